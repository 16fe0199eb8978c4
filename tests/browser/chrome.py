"""Headless Chromium for the browser tests: one place for the flags, the binaries and the profile.

CHROME_BIN (default /usr/bin/chromium) and CHROMEDRIVER (default /usr/bin/chromedriver) name the
binaries. `start()` returns the driver and its temporary profile directory; `stop()` ends both.
"""

import os
import shutil
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def start(console_log=False, window="1280,900"):
    """A headless Chromium with a fresh profile; with console_log, the console is kept for get_log."""
    profile = tempfile.mkdtemp(prefix="cairn-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROME_BIN", "/usr/bin/chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={window}")
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options), profile


def stop(driver, profile):
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
