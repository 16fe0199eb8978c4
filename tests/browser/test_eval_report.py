"""The HTML report of `cairn eval run --html` in headless Chromium, driven by selenium.

Started by a Rust test (crates/cairn-cli/tests/it/eval.rs) after a run of the `docs` suite with two
cases, `sqlite` (faithful, passing) and `moon` (a claim no passage supports, failing), three metrics
and one gate that holds.

Environment: CAIRN_REPORT (the HTML file), CAIRN_SCREENSHOTS (a directory for PNGs; a temporary one
when unset), and optionally CHROME_BIN (default /usr/bin/chromium) and CHROMEDRIVER (default
/usr/bin/chromedriver). By hand: CAIRN_REPORT=report.html python tests/browser/test_eval_report.py

The report is one file with no script and nothing fetched: any console error, or any request the
page makes, fails the test.
"""

import os
import pathlib
import tempfile
import unittest

from selenium.webdriver.common.by import By

import chrome

REPORT = pathlib.Path(os.environ["CAIRN_REPORT"]).resolve()
SHOTS = os.environ.get("CAIRN_SCREENSHOTS") or tempfile.mkdtemp(prefix="cairn-report-screenshots-")


class EvalReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.driver, cls.profile = chrome.start(console_log=True)

    @classmethod
    def tearDownClass(cls):
        chrome.stop(cls.driver, cls.profile)

    def setUp(self):
        self.driver.get(REPORT.as_uri())

    def tearDown(self):
        errors = [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [], "errors in the browser console")

    def find(self, selector, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def test_1_summary_gates_and_distributions(self):
        self.assertEqual(self.driver.title, "cairn eval: docs (passed)")
        self.assertEqual(self.find("#verdict").text, "all gates held")
        run = self.find("section.run")
        self.assertEqual(run.get_attribute("data-target"), "app:docs")
        gates = self.find_all("table.gates tr", run)[1:]
        self.assertEqual(len(gates), 1)
        self.assertTrue(gates[0].text.startswith("faithfulness mean ≥ 0.4 pass"), gates[0].text)
        metrics = {row.get_attribute("data-metric"): row for row in self.find_all("table.metrics tr[data-metric]", run)}
        self.assertEqual(sorted(metrics), ["answer_relevance", "faithfulness", "recall@8"])
        self.assertIn("0.500", metrics["faithfulness"].text)
        self.assertIn("2 of 2", metrics["faithfulness"].text)
        # One bar per tenth; faithfulness scored one case 0 and one 1: the first and last bars.
        bars = self.find_all("svg.hist rect", metrics["faithfulness"])
        self.assertEqual(len(bars), 10)
        heights = [float(bar.get_attribute("height")) for bar in bars]
        self.assertGreater(heights[0], 0)
        self.assertGreater(heights[9], 0)
        self.assertEqual(sum(1 for h in heights if h > 0), 2)
        # Nothing was fetched: the page is self-contained.
        resources = self.driver.execute_script("return performance.getEntriesByType('resource').length")
        self.assertEqual(resources, 0)
        self.driver.save_screenshot(os.path.join(SHOTS, "eval-report-summary.png"))

    def test_2_a_failing_case_opens_to_its_answer_passages_and_judge_reasons(self):
        cases = {c.get_attribute("data-case"): c for c in self.find_all("details.case")}
        self.assertEqual(sorted(cases), ["moon", "sqlite"])
        self.assertIn("fail", cases["moon"].get_attribute("class"))
        self.assertIn("pass", cases["sqlite"].get_attribute("class"))
        moon = cases["moon"]
        self.assertFalse(self.find(".answer", moon).is_displayed(), "cases start closed")
        summary = self.find("summary", moon)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
        summary.click()
        self.assertEqual(moon.get_attribute("open"), "true")
        self.assertTrue(self.find(".answer", moon).is_displayed())
        self.assertEqual(self.find(".question", moon).text, "Cairn runs on the moon.")
        self.assertIn("Cairn runs on the moon", self.find(".answer", moon).text)
        reasons = [row.text for row in self.find_all("table.judgements tr", moon)[1:]]
        faithfulness = next(r for r in reasons if r.startswith("faithfulness"))
        self.assertIn("Cairn runs on the moon", faithfulness)
        self.assertIn("faithfulness 0.000 < 0.5", self.find("ul.failures", moon).text)
        self.assertGreater(len(self.find_all(".passage", moon)), 0, "the retrieved passages are shown")
        self.driver.save_screenshot(os.path.join(SHOTS, "eval-report-case.png"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
