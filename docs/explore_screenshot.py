"""Make docs/explore.png: the units panel of an explorer page in headless Chromium.

    rnnlab train --time-limit 60 --out runs/stdlib
    rnnlab explore runs/stdlib
    python docs/explore_screenshot.py runs/stdlib/explore.html docs/explore.png

Needs chromium, chromium-driver, selenium and Pillow (matplotlib's dependency)."""
import io
import pathlib
import shutil
import sys
import tempfile
import time

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

page, out = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
profile = tempfile.mkdtemp()
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1100,1000", "--hide-scrollbars"]:
    opts.add_argument(flag)
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
try:
    driver.get(pathlib.Path(page).resolve().as_uri())          # a relative path too
    while driver.execute_script("return document.body.dataset.ready") != "1":
        time.sleep(0.05)
    driver.execute_script("document.querySelector('[data-role=unit-text]').style.maxHeight = '330px';"
                          "document.getElementById('toc').style.display = 'none'")
    png = driver.find_element(By.CSS_SELECTOR, '[data-panel="units"]').screenshot_as_png
finally:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
img = Image.open(io.BytesIO(png)).convert("RGB")
img = img.crop((0, 0, img.width, min(img.height, 520)))
img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
print(f"{out}: {img.width}x{img.height}")
