"""Sign-in through OpenID Connect in headless Chromium, driven by selenium.

Started by crates/cairn-cli/tests/it/browser.rs against `cairn serve` configured with
[auth] oidc_issuer pointing at a fake provider that signs in `alice` without a login page.
Environment: CAIRN_URL, CAIRN_SCREENSHOTS, and optionally CHROME_BIN and CHROMEDRIVER.
"""

import os
import tempfile
import unittest

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import chrome

URL = os.environ["CAIRN_URL"].rstrip("/")
SHOTS = os.environ.get("CAIRN_SCREENSHOTS") or tempfile.mkdtemp(prefix="cairn-ui-screenshots-")


class SignIn(unittest.TestCase):
    def setUp(self):
        os.makedirs(SHOTS, exist_ok=True)
        self.driver, self.profile = chrome.start()

    def tearDown(self):
        chrome.stop(self.driver, self.profile)

    def wait(self, condition, message, timeout=20):
        # The page navigates (to the provider and back) while it is polled: an element found just
        # before a navigation goes stale, which means "not yet", not failure.
        WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(lambda _: condition(), message)

    def test_the_page_signs_in_through_the_provider_and_comes_back(self):
        driver = self.driver
        driver.get(f"{URL}/")
        # The page finds no session, goes to /auth/login, the provider, /auth/callback, and back.
        self.wait(lambda: driver.find_element(By.ID, "user-name").text == "alice", "not signed in as alice")
        self.assertEqual(driver.current_url, f"{URL}/", "the page did not come back to where it was")
        cookies = {c["name"]: c for c in driver.get_cookies()}
        self.assertTrue(cookies["cairn_session"]["httpOnly"])
        self.assertEqual(cookies["cairn_session"]["sameSite"], "Lax")
        self.assertNotIn("cairn_session", driver.execute_script("return document.cookie"))
        logout = driver.find_element(By.CSS_SELECTOR, "#logout-form button")
        self.assertTrue(logout.is_displayed())
        driver.save_screenshot(os.path.join(SHOTS, "10-signed-in.png"))
        logout.click()
        self.wait(lambda: "cairn_session" not in {c["name"] for c in driver.get_cookies()}
                  or driver.find_element(By.ID, "user-name").text == "alice", "sign-out did nothing")


if __name__ == "__main__":
    unittest.main(verbosity=2)
