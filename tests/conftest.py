"Run the notebooks first (the README promises: every notebook, then tests/), whatever order pytest collected."


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/test_notebooks.py") else 1)  # stable sort
