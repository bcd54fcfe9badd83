"""The report in a real headless Chromium: no console error, every variant named, every chart
drawn. Skipped, with the reason, where no Chromium and chromedriver are installed."""

from __future__ import annotations

import shutil

import pytest

from tfrec.experiments import report as report_lib
from tfrec.experiments import results as results_lib

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    binary = next((shutil.which(b) for b in _BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "no headless browser: install Debian's `chromium` and `chromium-driver` "
            "(`.ci/run` does when it runs as root)"
        )
    return binary, driver


@pytest.mark.browser
def test_report_renders_in_chromium(fake_experiment, tmp_path):
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = tmp_path / "report.html"
    page.write_text(report_lib.render(results_lib.gather(fake_experiment)), encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,5000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.as_uri())
        charts = driver.find_elements(By.CSS_SELECTOR, "div.chart")
        assert len(charts) >= 7  # recall@k, five segment charts, the Pareto chart
        # Plotly draws each chart into SVG: a chart without one did not render.
        WebDriverWait(driver, 30).until(
            lambda d: all(c.find_elements(By.CSS_SELECTOR, "svg.main-svg") for c in charts)
        )
        for chart in charts:
            assert chart.find_elements(By.CSS_SELECTOR, "g.trace, g.scatterlayer .trace"), (
                chart.get_attribute("data-chart")
            )
        text = driver.find_element(By.TAG_NAME, "body").text
        for variant in fake_experiment.variants:
            assert variant in text
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
