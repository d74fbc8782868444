"""Options and their environment variables; bad input is InvalidArgument, never a usage dump."""

import json
import re
from pathlib import Path

import pytest
from hybridplace_worker.cli import build_parser, env_name, parse_args
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.runner import run

DOCS = Path(__file__).resolve().parents[3] / "docs" / "worker.md"


def _options(command):
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return [a for a in sub._actions if a.option_strings and a.dest != "help"]


def test_env_name_rule():
    assert env_name("--batch-sizes") == "HP_BATCH_SIZES"
    assert env_name("--termination-log") == "HP_TERMINATION_LOG"


def test_defaults_and_env_overrides(monkeypatch):
    args = parse_args(["bench", "--model", "builtin:mlp"])
    assert args.batch_sizes == [1, 2, 4, 8] and args.engine == "torch" and args.device == "cpu"
    monkeypatch.setenv("HP_BATCH_SIZES", "1,16")
    monkeypatch.setenv("HP_ENGINE", "triton")
    monkeypatch.setenv("HP_MODEL", "builtin:resnet")
    monkeypatch.setenv("HP_INPUT", "a:4:float32,b:2:int64")
    args = parse_args(["bench"])
    assert args.batch_sizes == [1, 16] and args.engine == "triton" and args.model == "builtin:resnet"
    assert args.input == ["a:4:float32,b:2:int64"]
    args = parse_args(["bench", "--batch-sizes", "2", "--input", "x:1:float32", "--input", "y:1:float32"])
    assert args.batch_sizes == [2] and args.input == ["x:1:float32", "y:1:float32"]  # the flag wins


@pytest.mark.parametrize(
    "argv,env",
    [
        (["bench", "--model", "builtin:mlp", "--batch-sizes", "1,x"], {}),
        (["bench", "--model", "builtin:mlp", "--batch-sizes", "0"], {}),
        (["bench", "--model", "builtin:mlp", "--engine", "onnx"], {}),
        (["bench"], {}),
        (["bench", "--model", "builtin:mlp"], {"HP_DURATION_SECONDS": "-1"}),
        (["bench", "--model", "builtin:mlp"], {"HP_DEVICE": "tpu"}),
        (["explode"], {}),
    ],
)
def test_bad_arguments_are_invalid_argument(argv, env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(WorkerError) as info:
        parse_args(argv)
    assert info.value.reason == Reason.INVALID_ARGUMENT


def test_invalid_argument_writes_one_json_error(tmp_path, capsys):
    log = tmp_path / "tl"
    code = run(
        ["bench", "--model", "builtin:mlp", "--concurrency", "two", "--termination-log", str(log)],
        started=None,
        handle_signals=False,
    )
    assert code == 2
    doc = json.loads(log.read_bytes())
    assert doc["reason"] == "InvalidArgument" and "concurrency" in doc["message"]
    assert json.loads(capsys.readouterr().out) == doc


def test_plan_longer_than_the_deadline_is_refused_before_any_work(tmp_path):
    log = tmp_path / "tl"
    code = run(
        [
            "bench",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            "1,2,4,8",
            "--duration-seconds",
            "60",
            "--deadline-seconds",
            "30",
            "--termination-log",
            str(log),
            "--output",
            "",
        ],
        started=None,
        handle_signals=False,
    )
    assert code == 2 and "deadline" in json.loads(log.read_bytes())["message"]


def test_the_triton_engines_request_overhead_counts_towards_the_deadline(tmp_path):
    # One point of 1 s fits 30 s; with 40 s of request overhead measurement after it, it does
    # not, and the message says which option made it so (torch would not measure it at all).
    def bench(engine: str, overhead: str) -> tuple[int, str]:
        log = tmp_path / f"tl-{engine}-{overhead}"
        code = run(
            [
                "bench",
                "--engine",
                engine,
                "--model",
                "builtin:mlp",
                "--batch-sizes",
                "1",
                "--concurrency",
                "1",
                "--duration-seconds",
                "1",
                "--deadline-seconds",
                "30",
                "--request-overhead-seconds",
                overhead,
                "--termination-log",
                str(log),
                "--output",
                "",
                "--device",
                "cuda",
            ],
            started=None,
            handle_signals=False,
        )
        return code, json.loads(log.read_bytes()).get("message", "")

    code, message = bench("triton", "40")
    assert code == 2 and "with --request-overhead-seconds 40" in message and "deadline" in message
    # Within the deadline the check passes and the run goes on (here to fail on no CUDA).
    for engine, overhead in (("triton", "2"), ("torch", "40")):
        code, message = bench(engine, overhead)
        assert "request-overhead" not in message and "--deadline-seconds" not in message


@pytest.mark.parametrize(
    ("budget", "fits"),
    [
        ([], False),  # 128 points of 10.5 s: far over 300 s
        (["--budget-points", "20"], True),  # at most 20 are measured: 210 s
        (["--budget-seconds", "200"], True),  # none starts after 200 s: at most 210.5 s
        (["--budget-points", "40"], False),  # 420 s
    ],
)
def test_a_budget_counts_towards_the_deadline(tmp_path, budget, fits):
    # What a plan needs is what the budget lets it measure, not the whole grid: 16 batch sizes x
    # 8 concurrency levels with a budget of 20 points fit a deadline the grid does not.
    log = tmp_path / "tl"
    code = run(
        [
            "bench",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            ",".join(str(b) for b in range(1, 17)),
            "--concurrency",
            "1,2,3,4,5,6,7,8",
            "--duration-seconds",
            "10",
            "--deadline-seconds",
            "300",
            *budget,
            "--termination-log",
            str(log),
            "--output",
            "",
            "--device",
            "cuda",
        ],
        started=None,
        handle_signals=False,
    )
    message = json.loads(log.read_bytes()).get("message", "")
    if fits:  # the check passes and the run goes on (here to fail on no CUDA)
        assert "--deadline-seconds" not in message, message
    else:
        assert code == 2 and "--deadline-seconds 300" in message, message


@pytest.mark.parametrize("command", ["bench", "serve"])
def test_every_option_names_its_env_var_and_is_documented(command):
    docs = DOCS.read_text()
    for action in _options(command):
        long = max(action.option_strings, key=len)
        if long == "--version":
            continue
        assert f"[env {env_name(long)}" in action.help, long
        assert re.search(rf"`{re.escape(long)}[` ]", docs), f"{long} is not in docs/worker.md"
        assert env_name(long) in docs, f"{env_name(long)} is not in docs/worker.md"


def test_a_bug_still_ends_in_one_internal_document(tmp_path, monkeypatch, capsys):
    import hybridplace_worker.runner as runner

    def broken_bench(args, dog, downloads=None, **_):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runner, "bench", broken_bench)
    log = tmp_path / "tl"
    code = run(["bench", "--model", "builtin:mlp", "--termination-log", str(log)], started=None, handle_signals=False)
    assert code == 70
    doc = json.loads(log.read_bytes())
    assert doc == {"v": 1, "ok": False, "reason": "Internal", "message": "ZeroDivisionError: a bug"}
    assert json.loads(capsys.readouterr().out) == doc


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--model", "builtin:mlp", "--deadline-seconds", "inf"],
        ["bench", "--model", "builtin:mlp", "--deadline-seconds", "nan"],
        ["bench", "--model", "builtin:mlp", "--deadline-seconds", "1e9"],  # past one week
        ["bench", "--model", "builtin:mlp", "--duration-seconds", "inf"],
        ["bench", "--model", "builtin:mlp", "--stability-threshold", "nan"],
        ["bench", "--model", "builtin:mlp", "--warmup-seconds", "inf"],
        ["bench", "--model", "builtin:mlp", "--max-queue-delay-ms", "nan"],
        ["bench", "--model", "builtin:mlp", "--threads", "-1"],
        ["bench", "--model", "builtin:mlp", "--batch-sizes", "1,1"],
        ["bench", "--model", "builtin:mlp", "--concurrency", "2,1,2"],
        ["bench", "--model", "builtin:mlp", "--batch-sizes", "99999999999999999999"],
        ["bench", "--model", "builtin:mlp", "--max-batch-size", "0"],
        ["bench", "--model", "builtin:mlp", "--instances", "0"],
        ["serve", "--model", "builtin:mlp", "--http-port", "0"],
        ["serve", "--model", "builtin:mlp", "--grpc-port", "65536"],
        ["serve", "--model", "builtin:mlp", "--metrics-port", "-5"],
        ["serve", "--model", "builtin:mlp", "--model-name", "/tmp/x"],
        ["serve", "--model", "builtin:mlp", "--model-name", ".."],
        ["serve", "--model", "builtin:mlp", "--model-name", "a/b"],
    ],
)
def test_out_of_range_values_are_invalid_argument(argv):
    with pytest.raises(WorkerError) as info:
        parse_args(argv)
    assert info.value.reason == Reason.INVALID_ARGUMENT


@pytest.mark.parametrize("value,expected", [("5e-05", 0.00005), ("1e-3", 0.001), ("2", 2.0), (".5", 0.5)])
def test_numbers_in_exponent_form_are_accepted(monkeypatch, value, expected):
    # The operator's :g wrote a CRD-valid 0.00005 ms as "5e-05": the serving pod did not start.
    args = parse_args(["serve", "--model", "builtin:mlp", "--max-queue-delay-ms", value])
    assert args.max_queue_delay_ms == pytest.approx(expected)
    monkeypatch.setenv("HP_WARMUP_SECONDS", value)
    assert parse_args(["bench", "--model", "builtin:mlp"]).warmup_seconds == pytest.approx(expected)


def test_an_explicit_max_batch_size_and_ports_are_kept():
    args = parse_args(
        [
            "serve",
            "--model",
            "builtin:mlp",
            "--max-batch-size",
            "1",
            "--http-port",
            "65535",
            "--model-name",
            "resnet-50_v1.2",
        ]
    )
    assert args.max_batch_size == 1 and args.http_port == 65535 and args.model_name == "resnet-50_v1.2"


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--deadline-seconds", "inf"], "--deadline-seconds"),  # crashed the watchdog, no deadline at all
        (["--model", "http://[::1/x"], "not a valid URL"),
        (["--model", "m.pt", "--input", "x:4294967296x4294967296:float32"], "elements"),
        (["--model", "m.pt", "--input", "x:1073741824x1024:float32", "--batch-sizes", "1,8388608"], "elements"),
    ],
)
def test_bad_values_end_in_invalid_argument_not_internal(tmp_path, extra, words):
    log = tmp_path / "tl"
    argv = ["bench", "--model", "builtin:mlp", *extra, "--termination-log", str(log), "--output", ""]
    code = run(argv, started=None, handle_signals=False)
    doc = json.loads(log.read_bytes())
    assert (code, doc["reason"]) == (2, "InvalidArgument") and words in doc["message"], doc
