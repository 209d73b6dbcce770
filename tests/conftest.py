"""Shared test settings: small thread counts so the suite behaves on a 2-core machine."""
import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# exported OpenVINO models go to a folder of this test session, not the user's cache
os.environ.setdefault("RTDL_CACHE_DIR", tempfile.mkdtemp(prefix="rtdl-test-cache-"))
