"""flambe.logging: log(...) routing to TensorBoard event files and log.txt per trial, global set-up, secrets."""

import glob
import logging
import os
import struct
import subprocess
import sys
import threading
import warnings
import zlib

import pytest

import flambe.logging as fl
from flambe.logging import (
    DataLoggingFilter,
    ScalarT,
    TensorboardXHandler,
    TrialLogging,
    get_trial_dir,
    log,
    log_histogram,
    log_image,
    log_pr_curve,
    log_scalar,
    log_text,
    read_scalars,
    register_secret,
    set_log_dir,
    setup_global_logging,
)


# ----------------------------------------------------------------------------- helpers
def read_events(folder):
    """Every (event file, Event) under ``folder``, read as TFRecords with their CRCs checked."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    found = []
    for path in sorted(glob.glob(os.path.join(str(folder), "**", "events.out.tfevents.*"), recursive=True)):
        with open(path, "rb") as handle:
            data = handle.read()
        pos = 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc32c(header)
            body = data[pos + 12:pos + 12 + length]
            assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked_crc32c(body)
            event = event_pb2.Event()
            event.ParseFromString(body)
            found.append((path, event))
            pos += 16 + length
    return found


def summaries(folder):
    """(tag, step, Summary.Value, event file) of every summary value under ``folder``."""
    return [(value.tag, event.step, value, path)
            for path, event in read_events(folder) if event.HasField("summary") for value in event.summary.value]


def scalars(folder):
    return {(tag, step): value.simple_value for tag, step, value, _ in summaries(folder)
            if value.WhichOneof("value") == "simple_value"}


def decode_png(data):
    """(width, height, color type, rows of pixel bytes) of an unfiltered 8-bit PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = len(raw) // height
    assert all(raw[row * stride] == 0 for row in range(height))  # filter byte 0 (none)
    return width, height, color, [raw[row * stride + 1:(row + 1) * stride] for row in range(height)]


def ours(handler):
    return type(handler).__module__.startswith("flambe.")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No trial dir from the environment; afterwards nothing of flambe's is left on the root logger."""
    monkeypatch.delenv("FLAMBE_TRIAL_DIR", raising=False)
    monkeypatch.delenv("FLAMBE_HOME", raising=False)
    fl.teardown_global_logging()  # an in-process CLI test (flambe.cli.main) may have set it up
    root = logging.getLogger()
    level = root.level
    yield
    set_log_dir(None)
    assert not [h for h in root.handlers if ours(h) or str(tmp_path) in getattr(h, "baseFilename", "")]
    assert root.level == level
    assert get_trial_dir() is None


# ----------------------------------------------------------------------------- import and plain scripts
def test_import_loads_neither_torch_nor_tensorboardx(tmp_path):
    code = ("import sys, flambe, flambe.logging\nfrom flambe.logging import log, log_pr_curves\n"
            "assert log_pr_curves is flambe.logging.log_pr_curve\n"
            "print(sorted(m for m in ('torch', 'tensorboardX', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_plain_script_logs_a_line_and_writes_no_file(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="flambe.metrics"):
        log("train/loss", 0.532, 10)
        log("val", {"acc": 0.75, "loss": 2}, 3)
        log("note", "hello")
    assert [r.getMessage() for r in caplog.records] == [
        "train/loss = 0.532 (step 10)", "val: acc = 0.75, loss = 2 (step 3)", "note: hello"]
    assert all(r.name == "flambe.metrics" and r.levelno == logging.INFO for r in caplog.records)
    assert isinstance(caplog.records[0].msg, ScalarT)
    assert os.listdir(tmp_path) == []
    assert not [h for h in logging.getLogger().handlers if ours(h)]


def test_log_rejects_what_it_cannot_log():
    import torch
    with pytest.raises(TypeError, match="log_histogram"):
        log("x", [1.0, 2.0], 0)
    with pytest.raises(TypeError, match="one-element"):
        log_scalar("x", torch.ones(2), 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_pr_curve("pr", [0, 1], [0.5, 1.5], 0)
    with pytest.raises(ValueError, match="same"):
        log_pr_curve("pr", [0, 1, 1], [0.5, 0.5], 0)
    with pytest.raises(ValueError, match="dataformats"):
        log_image("img", torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match="finite"):
        log_histogram("h", [1.0, float("nan")], 0)


# ----------------------------------------------------------------------------- inside a trial
def test_trial_writes_every_kind_to_tensorboard_and_log_txt(tmp_path):
    import numpy as np
    import torch
    trial = tmp_path / "trial"
    with TrialLogging(str(trial), hyper_params={"lr": 0.1}) as active:
        assert active.log_dir == str(trial) == get_trial_dir() == os.environ["FLAMBE_TRIAL_DIR"]
        for step in range(20):
            log("train/loss", torch.tensor(1.0 / (step + 1), requires_grad=True), step)
        log("val", {"acc": 0.5, "loss": 0.25}, 4)
        log("note", "hello *world*", 5)
        log_histogram("weights", torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True), 6)
        pixels = np.array([[[0, 10, 20], [30, 40, 50], [60, 70, 80]],
                           [[90, 100, 110], [120, 130, 140], [150, 160, 170]]], dtype=np.uint8)  # 2 x 3 x RGB
        log_image("picture", pixels, 7, dataformats="HWC")
        log_image("mask", torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]), 8)  # CHW, one channel of floats
        log_pr_curve("pr", torch.tensor([0, 1, 1, 0]), torch.tensor([0.1, 0.9, 0.6, 0.4]), 9, num_thresholds=3)
        logging.getLogger("flambe.some.module").debug("a debug detail")
        logging.getLogger("user_code").info("user info")
    assert get_trial_dir() is None and "FLAMBE_TRIAL_DIR" not in os.environ

    tb = trial / "tensorboard"
    assert len(glob.glob(str(tb / "events.out.tfevents.*"))) == 1  # one writer for all calls
    found = {tag: (step, value, path) for tag, step, value, path in summaries(tb)}
    values = scalars(tb)
    assert values[("train/loss", 0)] == 1.0 and values[("train/loss", 19)] == pytest.approx(0.05)
    assert len([key for key in values if key[0] == "train/loss"]) == 20
    # log_scalars: one chart "val", one run directory per child tag
    assert {(os.path.relpath(os.path.dirname(path), tb), tag, step, value.simple_value)
            for tag, step, value, path in summaries(tb) if tag == "val"} == {
        (os.path.join("val", "acc"), "val", 4, 0.5), (os.path.join("val", "loss"), "val", 4, 0.25)}
    step, value, _ = found["note/text_summary"]
    assert step == 5 and value.metadata.plugin_data.plugin_name == "text"
    assert value.tensor.string_val == [b"hello *world*"]
    step, value, _ = found["hyper_params/text_summary"]
    assert step == 0 and value.tensor.string_val == [b'{"lr": 0.1}']
    step, value, _ = found["weights"]
    assert step == 6 and (value.histo.num, value.histo.min, value.histo.max) == (4, 1, 4)
    assert (value.histo.sum, value.histo.sum_squares) == (10, 30)
    step, value, _ = found["picture"]
    assert step == 7 and (value.image.height, value.image.width, value.image.colorspace) == (2, 3, 3)
    assert decode_png(value.image.encoded_image_string) == (3, 2, 2, [bytes(range(0, 90, 10)),
                                                                     bytes(range(90, 180, 10))])
    step, value, _ = found["mask"]  # one channel is shown as grey RGB, 1.0 -> 255
    assert decode_png(value.image.encoded_image_string) == (2, 2, 2, [bytes([0] * 3 + [255] * 3),
                                                                     bytes([255] * 3 + [0] * 3)])
    step, value, _ = found["pr"]
    assert step == 9 and value.metadata.plugin_data.plugin_name == "pr_curves"
    assert [d.size for d in value.tensor.tensor_shape.dim] == [6, 3]
    tp, fp, tn, fn, precision, recall = np.array(value.tensor.float_val).reshape(6, 3)
    assert tp.tolist() == [2, 2, 0] and fp.tolist() == [2, 0, 0] and tn.tolist() == [0, 2, 2]
    assert fn.tolist() == [0, 0, 2]
    assert precision == pytest.approx([0.5, 1, 0]) and recall == pytest.approx([1, 1, 0])

    text = (trial / "log.txt").read_text()
    for line in ["INFO flambe.metrics: train/loss = 1 (step 0)", "train/loss = 0.05 (step 19)",
                 "val: acc = 0.5, loss = 0.25 (step 4)", "note: hello *world* (step 5)",
                 "weights: histogram of 4 values (step 6)", "picture: image of shape (2, 3, 3) (HWC) (step 7)",
                 "pr: PR curve over 4 predictions (step 9)", "DEBUG flambe.some.module: a debug detail",
                 "INFO user_code: user info", 'hyper_params: {"lr": 0.1} (step 0)']:
        assert line in text


def test_trials_in_sequence_route_to_their_own_dirs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    with TrialLogging(str(first)):
        log("metric", 1.0, 1)
    with TrialLogging(str(second)):
        assert get_trial_dir() == str(second)
        log("metric", 2.0, 2)
    assert scalars(first / "tensorboard") == {("metric", 1): 1.0}
    assert scalars(second / "tensorboard") == {("metric", 2): 2.0}
    assert "metric = 1 (step 1)" in (first / "log.txt").read_text()
    assert "metric = 2" not in (first / "log.txt").read_text()
    assert "metric = 2 (step 2)" in (second / "log.txt").read_text()


def test_same_dir_twice_appends_and_keeps_both_event_files(tmp_path):
    for step in (1, 2):  # a resumed trial, well within the second that names tensorboardX's files
        with TrialLogging(str(tmp_path)):
            log("metric", float(step), step)
    assert len(glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))) == 2
    assert scalars(tmp_path / "tensorboard") == {("metric", 1): 1.0, ("metric", 2): 2.0}
    assert (tmp_path / "log.txt").read_text().count("metric = ") == 2


def test_nested_trials_and_threads(tmp_path):
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    with TrialLogging(str(outer)):
        with TrialLogging(str(inner)):
            log("where", 1.0, 0)
        log("where", 2.0, 0)
        worker = threading.Thread(target=log, args=("thread", 3.0, 0))  # threads a trial starts log into it
        worker.start()
        worker.join()
    assert scalars(inner / "tensorboard") == {("where", 0): 1.0}
    assert scalars(outer / "tensorboard") == {("where", 0): 2.0, ("thread", 0): 3.0}


def test_trial_restores_levels_handlers_and_warning_capture(tmp_path):
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("flambe").level)
    with TrialLogging(str(tmp_path), root_log_level=logging.DEBUG):
        assert root.level == logging.DEBUG and logging.getLogger("flambe").level == logging.DEBUG
        warnings.warn("careful now", UserWarning, stacklevel=1)
    assert (list(root.handlers), root.level, logging.getLogger("flambe").level) == before
    assert "careful now" in (tmp_path / "log.txt").read_text()
    assert getattr(logging, "_warnings_showwarning", None) is None


def test_subprocess_with_trial_dir_env_logs_into_it(tmp_path):
    trial = tmp_path / "trial"
    env = dict(os.environ, FLAMBE_TRIAL_DIR=str(trial))
    code = 'from flambe.logging import log; log("x", 1.0, 0)'
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert scalars(trial / "tensorboard") == {("x", 0): 1.0}
    assert [(r["tag"], r["value"], r["step"]) for r in read_scalars(str(trial))] == [("x", 1.0, 0)]
    assert "INFO flambe.metrics: x = 1 (step 0)" in (trial / "log.txt").read_text()
    assert sorted(os.listdir(tmp_path)) == ["trial"]


def test_set_log_dir_outside_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert set_log_dir() == str(tmp_path / "flambe-logs")
    log("x", 5.0, 3)
    logging.getLogger("flambe.other").warning("not a metric")
    assert set_log_dir(None) is None
    log("x", 6.0, 4)  # no longer written
    assert scalars(tmp_path / "flambe-logs" / "tensorboard") == {("x", 3): 5.0}
    text = (tmp_path / "flambe-logs" / "log.txt").read_text()
    assert "x = 5 (step 3)" in text and "not a metric" not in text and "x = 6" not in text


def test_read_scalars_in_order_with_children_and_a_truncated_tail(tmp_path):
    assert read_scalars(str(tmp_path)) == []
    with TrialLogging(str(tmp_path)):
        log("loss", 0.5, 1)
        log("val", {"acc": 0.25}, 1)
        log("note", "text is not a scalar", 1)
        log("loss", 0.125, 2)
    (path,) = glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))
    with open(path, "ab") as handle:  # a record another process is still writing
        handle.write(struct.pack("<Q", 100)[:5])
    got = [(r["tag"], r["value"], r["step"]) for r in read_scalars(str(tmp_path))]
    assert got == [("loss", 0.5, 1), ("val/acc", 0.25, 1), ("loss", 0.125, 2)]


# ----------------------------------------------------------------------------- handlers, global set-up, secrets
def test_tensorboardx_handler_with_its_own_writer(tmp_path):
    from tensorboardX import SummaryWriter
    handler = TensorboardXHandler(SummaryWriter(str(tmp_path)))
    logger = logging.getLogger("test_logging.direct")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        logger.info(ScalarT("direct", 3.0, 7))
        logger.info("plain text is not tensorboard data")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert scalars(tmp_path) == {("direct", 7): 3.0}
    assert [tag for tag, *_ in summaries(tmp_path)] == ["direct"]


def test_data_logging_filter():
    def record(msg, level=logging.INFO):
        return logging.LogRecord("x", level, __file__, 1, msg, None, None)

    assert DataLoggingFilter().filter(record("text")) is True
    assert DataLoggingFilter(default=False).filter(record("text")) is False
    assert DataLoggingFilter(default=False).filter(record(ScalarT("a", 1.0, 0))) is True
    assert DataLoggingFilter(dont_include=(ScalarT,)).filter(record(ScalarT("a", 1.0, 0))) is False
    assert DataLoggingFilter(level=logging.WARNING).filter(record(ScalarT("a", 1.0, 0))) is False


def test_setup_global_logging_is_idempotent_and_undoable(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMBE_HOME", str(tmp_path / "home"))
    root = logging.getLogger()
    before = list(root.handlers)
    undo = setup_global_logging()
    try:
        added = [h for h in root.handlers if h not in before]
        setup_global_logging(logging.DEBUG)
        assert [h for h in root.handlers if h not in before] == added and len(added) == 2
        console = next(h for h in added if not isinstance(h, logging.FileHandler))
        rotating = next(h for h in added if isinstance(h, logging.handlers.RotatingFileHandler))
        assert console.level == logging.DEBUG and rotating.level == logging.DEBUG
        assert rotating.maxBytes == 10 * fl.MB
        logging.getLogger("flambe.test").debug("a global debug line")
    finally:
        undo()
    assert list(root.handlers) == before
    assert "DEBUG flambe.test: a global debug line" in (tmp_path / "home" / "logs" / "log.log").read_text()


def test_secrets_are_redacted_everywhere(tmp_path, monkeypatch):
    secret = "hunter2-do-not-log-me"
    register_secret(secret)
    monkeypatch.setenv("FLAMBE_HOME", str(tmp_path / "home"))
    undo = setup_global_logging()
    try:
        with TrialLogging(str(tmp_path / "trial")):
            logger = logging.getLogger("flambe.secretive")
            logger.info("password is %s", secret)
            try:
                raise RuntimeError(f"bad key {secret}")
            except RuntimeError:
                logger.exception("it failed")
            log_text("config", f"token={secret}", 0)
    finally:
        undo()
    for path in (tmp_path / "trial" / "log.txt", tmp_path / "home" / "logs" / "log.log"):
        text = path.read_text()
        assert secret not in text
        assert "password is ****" in text and "bad key ****" in text and "token=****" in text
    (value,) = [v for tag, _, v, _ in summaries(tmp_path / "trial" / "tensorboard") if tag == "config/text_summary"]
    assert value.tensor.string_val == [b"token=****"]
