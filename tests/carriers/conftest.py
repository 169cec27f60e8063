"""Fixtures: a fresh `callopt serve` per test, with an account and its API client."""

import shutil

import pytest

from harness import Api, Service, workdir


@pytest.fixture
def service(request):
    d = workdir()
    env = getattr(request, "param", None) or {}
    s = Service(d, env=env)
    key = s.account()
    s.start()
    s.key = key
    yield s
    s.stop()
    if request.node.rep_call.passed if hasattr(request.node, "rep_call") else True:
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"kept {d}:\n{s.stderr()}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def api(service):
    return Api(service, service.key)
