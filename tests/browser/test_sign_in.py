"""Sign-in through OpenID Connect in headless Chromium, driven by selenium.

Started by crates/cairn-cli/tests/it/browser.rs against `cairn serve` configured with
[auth] oidc_issuer pointing at a fake provider that signs in `alice` without a login page.
Environment: CAIRN_URL, CAIRN_SCREENSHOTS, and optionally CHROME_BIN and CHROMEDRIVER.
"""

import os
import shutil
import tempfile
import unittest

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["CAIRN_URL"].rstrip("/")
SHOTS = os.environ.get("CAIRN_SCREENSHOTS") or tempfile.mkdtemp(prefix="cairn-ui-screenshots-")
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class SignIn(unittest.TestCase):
    def setUp(self):
        os.makedirs(SHOTS, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="cairn-ui-chrome-")
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROME_BIN", "/usr/bin/chromium")
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument("--window-size=1280,900")
        service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=options)

    def tearDown(self):
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def wait(self, condition, message, timeout=20):
        WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition(), message)

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
