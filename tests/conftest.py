"""Shared test settings: small thread counts so the suite behaves on a 2-core machine."""
import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# exported OpenVINO models go to a folder of this test session, not the user's cache
os.environ.setdefault("RTDL_CACHE_DIR", tempfile.mkdtemp(prefix="rtdl-test-cache-"))


# OpenVINO stays out of the other tests' process state: with it loaded, a later test that
# forks DataLoader workers and then spawns a subprocess crashed the interpreter (SIGSEGV in
# waitpid; tests/test_build.py then test_dataset.py then test_decode.py, not reduced
# further yet). So `--backend auto` resolves to torch in every test but those of
# test_openvino_backend.py, which run last.
import pytest  # noqa: E402

# The ONNX Runtime tests (its threads, an exported ResNet-50) run last too, before OpenVINO's,
# and `auto` never resolves to ONNX Runtime outside them, so the OpenVINO tests keep meaning
# what they were written for.
OPENVINO_TESTS = "test_openvino_backend.py"
ONNXRUNTIME_TESTS = "test_onnxruntime_backend.py"
RUNTIME_TESTS = (ONNXRUNTIME_TESTS, OPENVINO_TESTS)  # in this order, after every other test


def pytest_collection_modifyitems(config, items):
    # stable: the other tests keep their order
    items.sort(key=lambda item: RUNTIME_TESTS.index(item.path.name) + 1
               if item.path.name in RUNTIME_TESTS else 0)


@pytest.fixture(autouse=True)
def _auto_backend_is_torch_outside_the_runtime_tests(request, monkeypatch):
    if request.path.name != OPENVINO_TESTS:
        monkeypatch.setattr("extractors.precision.openvino_installed", lambda: False)
    if request.path.name != ONNXRUNTIME_TESTS:
        monkeypatch.setattr("extractors.precision.onnxruntime_installed", lambda: False)
