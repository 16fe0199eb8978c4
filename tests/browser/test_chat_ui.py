"""The web chat UI (web/index.html, web/app.js) in headless Chromium, driven by selenium.

Started by a Rust test against a real `cairn serve` with four apps: CAIRN_APP ("handbook", a small
local model over a collection of Markdown docs about installing Cairn), CAIRN_HOSTILE_APP ("hostile",
whose model answers with script tags, an onerror image, a tracking pixel and a javascript: link) and
CAIRN_DOWN_APP ("down", whose upstream always fails) and CAIRN_SLOW_APP ("slow", whose model streams
a word every 100 ms for 10 s, to press Stop in), and the agent CAIRN_AGENT ("agent:researcher", a
scripted tool-calling model with the tool `search`) and CAIRN_CAREFUL_AGENT ("agent:careful", the
same with every `search` call waiting for the user's approval).

Environment: CAIRN_URL (http://127.0.0.1:PORT), CAIRN_SCREENSHOTS (a directory for PNGs of the main
states; a temporary one when unset), CAIRN_APP, CAIRN_HOSTILE_APP, CAIRN_DOWN_APP, CAIRN_SLOW_APP, CAIRN_AGENT, CAIRN_CAREFUL_AGENT, and optionally
CHROME_BIN (default /usr/bin/chromium), CHROMEDRIVER (default /usr/bin/chromedriver) and
CAIRN_ANSWER_TIMEOUT (seconds to wait for an answer, default 120). By hand, against a running server
with those apps: CAIRN_URL=http://127.0.0.1:8080 python tests/browser/test_chat_ui.py

Needs selenium (4.50.0, from scripts/python-env.sh), Chromium and a matching chromedriver. Each test starts from a fresh page;
test_6 stops an answer midway, so it runs last. Any uncaught exception, console.error or CSP
violation in the page fails the test it happened in.
"""

import json
import os
import re
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

import chrome

URL = os.environ["CAIRN_URL"].rstrip("/")
SHOTS = os.environ.get("CAIRN_SCREENSHOTS") or tempfile.mkdtemp(prefix="cairn-ui-screenshots-")
APP = os.environ.get("CAIRN_APP", "handbook")
HOSTILE_APP = os.environ.get("CAIRN_HOSTILE_APP", "hostile")
DOWN_APP = os.environ.get("CAIRN_DOWN_APP", "down")
SLOW_APP = os.environ.get("CAIRN_SLOW_APP", "slow")
AGENT = os.environ.get("CAIRN_AGENT", "agent:researcher")
CAREFUL_AGENT = os.environ.get("CAIRN_CAREFUL_AGENT", "agent:careful")
ANSWER_TIMEOUT = float(os.environ.get("CAIRN_ANSWER_TIMEOUT", "120"))
QUESTION = "How do I install Cairn on macOS?"

# The last assistant message's state and answer length, read in one round trip.
LAST_ANSWER_JS = """
const answers = document.querySelectorAll('#messages .message[data-role="assistant"]');
const last = answers[answers.length - 1];
if (!last) return null;
const body = last.querySelector('.message-body');
return [last.dataset.state || '', body ? body.textContent.trim().length : 0];
"""


def api(method, path, body=None):
    """Calls the Cairn API directly (to check what the UI did, or to set up data)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


class ChatUi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.driver, cls.profile = chrome.start(console_log=True)
        cls.driver.set_script_timeout(30)

    @classmethod
    def tearDownClass(cls):
        chrome.stop(cls.driver, cls.profile)
        print(f"\nscreenshots: {SHOTS}")

    def setUp(self):
        self.driver.set_window_size(1280, 900)
        self.driver.get_log("browser")  # start each test with an empty console log

    def tearDown(self):
        # Uncaught exceptions, console.error and CSP violations fail the test; failed requests
        # (source "network": a 404 while lineage is being written, a refused question) do not.
        errors = [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and entry.get("source") != "network"
        ]
        self.assertEqual(errors, [], "errors in the browser console")

    # -- helpers ---------------------------------------------------------------------------------

    def wait(self, condition, timeout=15, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition(), message)

    def find(self, selector, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))

    def click(self, element):
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def open_page(self, fragment=""):
        self.driver.get("about:blank")
        self.driver.get(f"{URL}/{fragment}")
        self.wait(lambda: self.driver.execute_script("return document.documentElement.dataset.ready === 'true'"),
                  message="the page did not finish starting")
        self.assertFalse(self.find("#error-banner").is_displayed(), self.find("#error-banner").text)

    def choose_app(self, name):
        select = Select(self.find("#app-select"))
        self.assertIn(name, [option.get_attribute("value") for option in select.options])
        select.select_by_value(name)

    def ask(self, app, question):
        """Asks in a new chat and returns the answer's <article>."""
        self.open_page()
        self.choose_app(app)
        box = self.find("#question")
        box.click()
        box.send_keys(question)
        self.find("#send").click()
        return self.last_answer()

    def last_answer(self):
        self.wait(lambda: self.find_all('#messages .message[data-role="assistant"]'), message="no answer appeared")
        return self.find_all('#messages .message[data-role="assistant"]')[-1]

    def wait_finished(self, answer, timeout=ANSWER_TIMEOUT):
        self.wait(lambda: answer.get_attribute("data-state") in ("done", "error", "stopped"), timeout,
                  "the answer did not finish")
        return answer.get_attribute("data-state")

    def active_id(self):
        return self.driver.execute_script("return document.activeElement && document.activeElement.id")

    def focus_inside(self, selector):
        return self.driver.execute_script(
            "return document.querySelector(arguments[0]).contains(document.activeElement)", selector)

    def press_escape(self):
        ActionChains(self.driver).send_keys(Keys.ESCAPE).perform()

    # -- tests -----------------------------------------------------------------------------------

    def test_1_answer_sources_details_feedback_and_reload(self):
        driver = self.driver
        self.open_page()
        self.assertEqual(self.find("#user-name").text, "local")
        self.assertTrue(self.find("#new-chat").is_displayed())
        self.shot("01-empty-chat")

        # Keyboard: the question box is the next tab stop after the app select; Enter sends.
        self.choose_app(APP)
        driver.execute_script("document.getElementById('app-select').focus()")
        ActionChains(driver).send_keys(Keys.TAB).perform()
        self.assertEqual(self.active_id(), "question")
        ActionChains(driver).send_keys(QUESTION).send_keys(Keys.ENTER).perform()

        question = self.wait(lambda: self.find_all('#messages .message[data-role="user"]'))[-1]
        self.assertEqual(self.find(".message-body", question).text, QUESTION)
        self.assertEqual(self.find("#question").get_attribute("value"), "")
        answer = self.last_answer()

        # While streaming: Stop instead of Send, and the answer grows.
        lengths = []
        streaming_shot = False
        saw_stop = False
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            state, length = driver.execute_script(LAST_ANSWER_JS)
            if state != "streaming":
                break
            if self.find("#stop").is_displayed() and not self.find("#send").is_displayed():
                saw_stop = True
            if length:
                lengths.append(length)
                if not streaming_shot and length > 20:
                    self.shot("02-streaming")
                    streaming_shot = True
            time.sleep(0.1)
        self.assertTrue(saw_stop, "the Stop button was not shown while the answer streamed")
        self.assertGreaterEqual(len(set(lengths)), 2, f"the answer did not grow while streaming: {lengths}")
        self.assertEqual(self.wait_finished(answer), "done", answer.text)
        self.assertFalse(self.find("#stop").is_displayed())
        self.assertTrue(self.find("#send").is_displayed())
        answer_text = self.find(".message-body", answer).text.strip()
        self.assertTrue(answer_text)
        message_id = answer.get_attribute("data-message-id")
        lineage_id = answer.get_attribute("data-lineage-id")
        self.assertTrue(message_id and lineage_id, "the answer has no message or lineage id")
        self.assertTrue(question.get_attribute("data-message-id"), "the question has no message id")
        conversation_id = re.search(r"#c=([^&]+)", driver.current_url).group(1)
        # The server titles an untitled conversation from its first question; the sidebar shows it.
        self.wait(lambda: self.find(f'#conversations li[data-conversation-id="{conversation_id}"] .conversation-open').text
                  not in ("", "New conversation"), 10, "the sidebar did not pick up the conversation's title")

        # Sources: a chip opens the citation panel with the cited span highlighted; Esc closes it.
        chips = self.find_all(".source-chip", answer)
        self.assertGreaterEqual(len(chips), 1, "the answer lists no sources")
        self.assertIn("sources", self.find(".sources", answer).text.lower())
        for marker in self.find_all(".citation-marker", answer):
            self.assertTrue(self.find_all(f'.source-chip[data-citation="{marker.get_attribute("data-citation")}"]', answer),
                            "a citation marker has no source")
        panel = self.find("#citation-panel")
        self.assertFalse(panel.is_displayed())
        self.click(chips[0])
        self.wait(panel.is_displayed, message="the citation panel did not open")
        self.assertTrue(self.focus_inside("#citation-panel"), "focus did not move into the citation panel")
        self.assertTrue(self.find(".citation-title", panel).text.strip())
        self.assertTrue(self.find(".citation-source", panel).text.strip())
        mark = self.wait(lambda: self.find_all(".citation-passage mark", panel), message="no highlighted passage")[0]
        self.wait(lambda: mark.text.strip(), message="the highlighted passage is empty")
        self.shot("03-citation-panel")
        self.press_escape()
        self.wait(lambda: not panel.is_displayed(), message="Esc did not close the citation panel")
        self.assertEqual(driver.execute_script("return document.activeElement.className"), "source-chip",
                         "focus did not return to the source chip")

        # Details: the answer's lineage.
        self.click(self.find(".action-details", answer))
        details = self.find("#details-panel")
        self.wait(details.is_displayed, message="the details panel did not open")
        self.assertTrue(self.focus_inside("#details-panel"))
        self.wait(lambda: self.find(".details-prompt", details).is_displayed(), 30, "the details did not load")
        self.assertRegex(self.find(".details-prompt", details).text, r"^rag_answer v?\S+")
        self.assertTrue(self.find(".details-model", details).text.strip())
        self.assertRegex(self.find(".details-tokens", details).text, r"^\d+ in · \d+ out")
        self.assertRegex(self.find(".details-cost", details).text, r"^(\$\d+\.\d{4}|not known)$")
        self.assertRegex(self.find(".details-latency", details).text, r"^\d[\d,]* ms$")
        self.assertGreaterEqual(len(self.find_all(".details-passages li", details)), 1)
        self.assertRegex(self.find(".details-passages li", details).text, r"score \d+\.\d{3}")
        lineage = api("GET", f"/v1/lineage/{lineage_id}")
        self.assertIn(str(lineage["usage"]["input_tokens"]), self.find(".details-tokens", details).text)
        self.shot("04-details-panel")
        self.press_escape()
        self.wait(lambda: not details.is_displayed(), message="Esc did not close the details panel")

        # Copy: a visible confirmation.
        self.click(self.find(".action-copy", answer))
        self.wait(lambda: self.find(".copy-status", answer).text == "Copied", message="no Copied confirmation")

        # Feedback: thumbs down with a comment, recorded on the lineage.
        down = self.find(".feedback-down", answer)
        self.assertEqual(down.get_attribute("aria-pressed"), "false")
        self.click(down)
        self.assertEqual(down.get_attribute("aria-pressed"), "true")
        self.assertEqual(self.find(".feedback-up", answer).get_attribute("aria-pressed"), "false")
        comment = self.find(".feedback-comment", answer)
        self.wait(comment.is_displayed)
        comment.send_keys("It did not mention Homebrew.")
        self.click(self.find(".feedback-send", answer))
        self.wait(lambda: self.find(".feedback-thanks", answer).is_displayed(), 30, "no thanks after sending feedback")
        self.shot("05-feedback-sent")
        feedback = api("GET", f"/v1/lineage/{lineage_id}")["feedback"]
        self.assertIn((-1, "It did not mention Homebrew."), [(f["rating"], f.get("comment")) for f in feedback])

        # Reload: the conversation stays open, in the sidebar and with its messages.
        driver.refresh()
        self.wait(lambda: driver.execute_script("return document.documentElement.dataset.ready === 'true'"))
        self.assertIn(f"#c={conversation_id}", driver.current_url)
        item = self.find(f'#conversations li[data-conversation-id="{conversation_id}"]')
        self.assertTrue(self.find(".conversation-open", item).text.strip())
        self.assertEqual(self.find(".conversation-open", item).get_attribute("aria-current"), "page")
        messages = self.find_all("#messages .message")
        self.assertEqual([m.get_attribute("data-role") for m in messages], ["user", "assistant"])
        self.assertEqual(self.find(".message-body", messages[0]).text, QUESTION)
        self.assertEqual(" ".join(self.find(".message-body", messages[1]).text.split()), " ".join(answer_text.split()))
        self.assertEqual(messages[1].get_attribute("data-message-id"), message_id)
        self.assertEqual(messages[1].get_attribute("data-lineage-id"), lineage_id)
        self.assertGreaterEqual(len(self.find_all(".source-chip", messages[1])), 1)
        self.assertTrue(self.find(".action-regenerate", messages[1]).is_displayed())
        self.shot("06-after-reload")

        # Rename, and the new title survives another reload.
        self.click(self.find(".conversation-rename", item))
        title_input = self.find(f'#conversations li[data-conversation-id="{conversation_id}"] .conversation-title-input')
        self.assertTrue(self.driver.execute_script("return document.activeElement === arguments[0]", title_input),
                        "focus did not move to the title box")
        title_input.clear()
        title_input.send_keys("Installing on a Mac", Keys.ENTER)
        self.wait(lambda: self.find(f'#conversations li[data-conversation-id="{conversation_id}"] .conversation-open').text
                  == "Installing on a Mac", message="the rename did not show")
        driver.refresh()
        self.wait(lambda: driver.execute_script("return document.documentElement.dataset.ready === 'true'"))
        self.assertEqual(self.find(f'#conversations li[data-conversation-id="{conversation_id}"] .conversation-open').text,
                         "Installing on a Mac")
        self.assertEqual(api("GET", f"/v1/conversations/{conversation_id}")["title"], "Installing on a Mac")
        self.assertEqual(len(self.find_all("#messages .message")), 2)

    def test_2_delete_asks_first_then_deletes(self):
        keep = api("POST", "/v1/conversations", {"title": "Keep me (UI test)"})
        throwaway = api("POST", "/v1/conversations", {"title": "Throwaway (UI test)"})
        try:
            self.open_page()
            item = self.find(f'#conversations li[data-conversation-id="{throwaway["id"]}"]')
            self.assertEqual(self.find(".conversation-open", item).text, "Throwaway (UI test)")

            # Cancel keeps it.
            self.click(self.find(".conversation-delete", item))
            self.click(self.find(".conversation-delete-cancel", item))
            item = self.find(f'#conversations li[data-conversation-id="{throwaway["id"]}"]')
            self.assertEqual(api("GET", f"/v1/conversations/{throwaway['id']}")["id"], throwaway["id"])

            # Confirming deletes it, and only it.
            self.click(self.find(".conversation-delete", item))
            self.assertIn("Throwaway (UI test)", item.text)
            self.click(self.find(".conversation-delete-confirm", item))
            self.wait(lambda: not self.find_all(f'#conversations li[data-conversation-id="{throwaway["id"]}"]'),
                      message="the deleted conversation is still listed")
            with self.assertRaises(urllib.error.HTTPError) as caught:
                api("GET", f"/v1/conversations/{throwaway['id']}")
            self.assertEqual(caught.exception.code, 404)
            self.assertTrue(self.find_all(f'#conversations li[data-conversation-id="{keep["id"]}"]'))
            self.driver.refresh()
            self.wait(lambda: self.driver.execute_script("return document.documentElement.dataset.ready === 'true'"))
            self.assertFalse(self.find_all(f'#conversations li[data-conversation-id="{throwaway["id"]}"]'))

            # A link to a deleted conversation says so instead of showing a blank page.
            self.driver.get("about:blank")
            self.driver.get(f"{URL}/#c={throwaway['id']}")
            banner = self.find("#error-banner")
            self.wait(banner.is_displayed, message="no message for a deleted conversation")
            self.assertTrue(banner.text.strip())
        finally:
            for conversation in (keep, throwaway):
                try:
                    api("DELETE", f"/v1/conversations/{conversation['id']}")
                except urllib.error.HTTPError:
                    pass

    def test_3_hostile_answer_renders_inert(self):
        answer = self.ask(HOSTILE_APP, "Tell me something.")
        self.assertEqual(self.wait_finished(answer), "done", answer.text)
        self.check_inert(answer)
        self.shot("08-hostile-answer")

        # Regenerate replaces the answer, and the new one is as inert.
        self.click(self.find(".action-regenerate", answer))
        self.wait(lambda: self.find_all('#messages .message[data-role="assistant"]')[-1] != answer)
        fresh = self.last_answer()
        self.assertEqual(self.wait_finished(fresh), "done", fresh.text)
        self.assertEqual(len(self.find_all('#messages .message[data-role="assistant"]')), 1)
        self.check_inert(fresh)

    def check_inert(self, answer):
        driver = self.driver
        body = self.find(".message-body", answer)
        self.assertIn("Here is", body.text)
        self.assertIn("tracker", body.text)  # the image became its alt text
        for link in self.find_all("a", body):  # a live link would be clicked here
            if link.get_attribute("href"):
                self.assertRegex(link.get_attribute("href"), r"^(https?|mailto):")
            else:
                link.click()
        time.sleep(0.5)
        self.assertEqual(driver.execute_script("return typeof window.__cairnPwned"), "undefined")
        self.assertEqual(self.find_all("#messages script, #messages img, #messages iframe, #messages object, "
                                       "#messages embed, .message-body svg, .message-body [onerror]"), [])
        self.assertEqual(self.find_all('#messages a[href^="javascript" i]'), [])
        requested = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        self.assertEqual([url for url in requested if "pixel.png" in url or url.startswith("http://127.0.0.1:9/")], [])

    def test_3b_agent_steps_are_shown_as_they_run(self):
        answer = self.ask(AGENT, "Where is the catalog kept?")
        self.assertEqual(self.wait_finished(answer), "done", answer.text)
        steps = self.find_all(".agent-step", answer)
        self.assertEqual(len(steps), 1, answer.text)
        step = steps[0]
        self.assertEqual(step.get_attribute("data-status"), "ok")
        self.assertEqual(self.find(".step-tool", step).text, "search")
        self.assertRegex(self.find(".step-status", step).text, r"^ok · \d+ ms$")
        # Collapsed by default; opened, it shows the call's arguments.
        self.assertFalse(self.find(".step-arguments", step).is_displayed())
        self.click(self.find("summary", step))
        self.assertIn('"query": "Where is the catalog kept?"', self.find(".step-arguments", step).text)
        self.assertTrue(self.find(".message-body", answer).text.startswith("Found:"), answer.text)
        # What its search found is shown as the answer's sources once it has run, and the answer's
        # [1] is a marker of the first of them.
        sources = self.find(".sources", answer)
        self.assertTrue(sources.is_displayed())
        self.assertTrue(self.find_all('.source-chip[data-citation="1"]', sources))
        self.assertTrue(self.find_all('.message-body .citation-marker[data-citation="1"]', answer))
        self.shot("08b-agent-steps")

    def test_3c_agent_calls_wait_for_approval(self):
        for approve, expected in ((True, "Found: 1 "), (False, "Found: The user denied this call.")):
            answer = self.ask(CAREFUL_AGENT, "Where is the catalog kept?")
            self.assertEqual(self.wait_finished(answer), "done", answer.text)
            step = self.find(".agent-step", answer)
            self.assertEqual(step.get_attribute("data-status"), "awaiting_approval")
            self.assertEqual(self.find(".step-status", step).text, "needs your approval")
            self.assertIn("waiting for your approval", self.find(".message-notice", answer).text)
            if approve:
                self.shot("08c-agent-awaiting-approval")
            self.click(self.find(".step-approve" if approve else ".step-deny", step))
            self.wait(lambda: len(self.find_all('#messages .message[data-role="assistant"]')) == 2,
                      message="the run did not go on after the decision")
            resumed = self.last_answer()
            self.assertEqual(self.wait_finished(resumed), "done", resumed.text)
            self.assertTrue(self.find(".message-body", resumed).text.startswith(expected), resumed.text)
            self.assertEqual(self.find(".step-decided", step).text, "Approved" if approve else "Denied")
            resumed_step = self.find(".agent-step", resumed)
            self.assertEqual(resumed_step.get_attribute("data-status"), "ok" if approve else "denied")

    def test_4_upstream_failure_is_shown(self):
        answer = self.ask(DOWN_APP, "Is anyone there?")
        self.assertEqual(self.wait_finished(answer, 60), "error")
        alert = self.find('[role="alert"]', answer)
        self.assertTrue(alert.is_displayed())
        self.assertTrue(alert.text.strip(), "the error message is empty")
        self.assertTrue(self.find("#send").is_displayed())
        self.assertFalse(self.find("#stop").is_displayed())
        # A way to try again: Regenerate, or (refused before streaming) the question back in the box.
        self.assertTrue(self.find(".action-regenerate", answer).is_displayed()
                        or self.find("#question").get_attribute("value") == "Is anyone there?", "no way to try again")
        self.shot("09-upstream-error")

    def test_5_phone_width(self):
        driver = self.driver
        driver.set_window_size(390, 844)
        try:
            self.open_page()
            toggle = self.find("#sidebar-toggle")
            sidebar = self.find("#sidebar")
            self.assertTrue(toggle.is_displayed())
            self.assertTrue(toggle.get_attribute("aria-label"))
            self.assertEqual(toggle.get_attribute("aria-expanded"), "false")
            self.assertFalse(sidebar.is_displayed())
            self.assertLessEqual(driver.execute_script("return document.documentElement.scrollWidth"),
                                 driver.execute_script("return window.innerWidth"), "the page scrolls sideways")
            box = self.find("#question")
            self.assertTrue(box.is_displayed())
            self.assertTrue(self.find("#send").is_displayed())
            box.click()
            box.send_keys("Does it work on a phone?", Keys.SHIFT, Keys.ENTER, Keys.NULL, "On two lines")
            # Shift+Enter adds a line and sends nothing.
            self.assertEqual(box.get_attribute("value"), "Does it work on a phone?\nOn two lines")
            self.assertEqual(self.find_all("#messages .message"), [])
            rect = box.rect
            self.assertGreaterEqual(rect["width"], 200)
            self.assertLessEqual(rect["y"] + rect["height"], driver.execute_script("return window.innerHeight"))
            self.shot("07-phone-width")

            toggle.click()
            self.wait(sidebar.is_displayed, message="the toggle did not show the sidebar")
            self.assertEqual(toggle.get_attribute("aria-expanded"), "true")
            self.assertEqual(self.active_id(), "new-chat")
            self.shot("07b-phone-sidebar")
            self.press_escape()
            self.wait(lambda: not sidebar.is_displayed(), message="Esc did not hide the sidebar")
            self.assertEqual(self.active_id(), "sidebar-toggle")
        finally:
            driver.set_window_size(1280, 900)

    def test_6_stop_keeps_the_partial_answer(self):
        # The slow app's model streams a word every 100 ms for 10 s: there is time to press Stop.
        answer = self.ask(SLOW_APP, "What does Cairn store in its database?")
        self.wait(lambda: self.driver.execute_script(LAST_ANSWER_JS)[1] > 0 or answer.get_attribute("data-state") != "streaming",
                  ANSWER_TIMEOUT, "no text streamed")
        stop = self.find("#stop")
        self.assertEqual(answer.get_attribute("data-state"), "streaming", "the answer ended before Stop")
        self.assertTrue(stop.is_displayed(), "no Stop button while streaming")
        stop.click()
        self.assertEqual(self.wait_finished(answer, 10), "stopped")
        self.assertTrue(self.find(".message-body", answer).text.strip(), "the partial answer was removed")
        self.assertIn("Stopped", answer.text)
        self.assertTrue(self.find("#send").is_displayed())
        self.assertEqual(self.active_id(), "question")
        partial = self.find(".message-body", answer).text.strip()
        conversation_id = self.driver.current_url.split("#c=")[-1]
        stored = {}
        for _ in range(50):
            stored = api("GET", f"/v1/conversations/{conversation_id}")
            if stored["messages"][-1]["role"] == "assistant":
                break
            time.sleep(0.2)
        kept = stored["messages"][-1]
        self.assertEqual(kept["role"], "assistant", "the stopped answer was not stored")
        self.assertTrue(kept["content"].startswith(partial.split()[0]), (partial, kept["content"]))
        self.assertNotIn("word99", kept["content"], "generation went on after Stop")


if __name__ == "__main__":
    unittest.main(verbosity=2)
