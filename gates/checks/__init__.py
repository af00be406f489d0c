"""Individual gate checks; each returns evidence check records built by `gates.checks.result`."""
