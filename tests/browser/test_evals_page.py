"""The evals page (/evals: web/evals.html, web/evals.js) in headless Chromium, driven by selenium.

Started by a Rust test (crates/cairn-cli/tests/it/promotion.rs) against a real `cairn serve` whose
catalog holds runs of the `gate` suite: CAIRN_RUN_BEFORE (refused: the app added an unsupported
claim, faithfulness 0.5) and CAIRN_RUN_AFTER (passed, faithfulness 1.0), among others.

Environment: CAIRN_URL, CAIRN_RUN_BEFORE, CAIRN_RUN_AFTER, CAIRN_SCREENSHOTS (optional), and
CHROME_BIN / CHROMEDRIVER as for every browser test (tests/browser/chrome.py).
"""

import os
import tempfile
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import chrome

URL = os.environ["CAIRN_URL"].rstrip("/")
BEFORE = os.environ["CAIRN_RUN_BEFORE"]
AFTER = os.environ["CAIRN_RUN_AFTER"]
SHOTS = os.environ.get("CAIRN_SCREENSHOTS") or tempfile.mkdtemp(prefix="cairn-evals-screenshots-")


class EvalsPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.driver, cls.profile = chrome.start(console_log=True)

    @classmethod
    def tearDownClass(cls):
        chrome.stop(cls.driver, cls.profile)

    def setUp(self):
        self.driver.get(f"{URL}/evals")
        self.wait(lambda: self.driver.execute_script("return document.documentElement.dataset.ready === 'true'"))
        self.assertFalse(self.find("#error-banner").is_displayed(), self.find("#error-banner").text)

    def tearDown(self):
        errors = [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [], "errors in the browser console")

    def wait(self, condition, timeout=15):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition())

    def find(self, selector, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def suites(self):
        # Read in one script: the table is re-rendered under the reader.
        return set(self.driver.execute_script(
            "return [...document.querySelectorAll('#runs tbody tr')].map(r => r.children[2].textContent)"))

    def run_row(self, run_id):
        return self.find(f'#runs tbody tr[data-run="{run_id}"]')

    def test_1_runs_are_listed_and_filtered_by_suite(self):
        self.assertTrue({"gate", "watch"} <= self.suites(), self.suites())
        self.assertIn("failed", self.run_row(BEFORE).text)
        self.assertIn("passed", self.run_row(AFTER).text)
        box = self.find("#suite-filter")
        box.send_keys("gate")
        self.find('#runs-filter button[type="submit"]').click()
        self.wait(lambda: self.suites() == {"gate"})

    def test_2_a_run_opens_to_its_gates_and_cases(self):
        self.find("button.link", self.run_row(BEFORE)).click()
        self.wait(lambda: self.find("#run").is_displayed())
        self.assertIn("failed", self.find("#run-heading").text)
        gate = self.find("#gates tbody tr")
        self.assertIn("FAIL", gate.text)
        case = self.find('#cases tbody tr[data-case="sqlite"]')
        self.assertIn("faithfulness 0.50", case.text)
        self.assertIn("It also runs on the moon.", case.text)
        self.driver.save_screenshot(os.path.join(SHOTS, "evals-run.png"))

    def test_3_two_checked_runs_compare_side_by_side(self):
        compare = self.find("#compare-button")
        self.assertFalse(compare.is_enabled())
        for run_id in (AFTER, BEFORE):
            self.find('input[type="checkbox"]', self.run_row(run_id)).click()
        self.assertTrue(compare.is_enabled())
        compare.click()
        self.wait(lambda: self.find("#comparison").is_displayed())
        row = self.find('#comparison-table tbody tr[data-metric="faithfulness"]')
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        self.assertEqual(cells[1:4], ["0.500", "1.000", "+0.500 [0.500, 0.500]"])
        self.assertEqual(cells[4], "sqlite", "the case that got better")
        self.driver.save_screenshot(os.path.join(SHOTS, "evals-compare.png"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
