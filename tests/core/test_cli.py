import json

from core.cli.main import main


def test_train_then_evaluate_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--epochs", "1", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "succeeded" and 0 <= printed["final"]["robust_acc"] <= 1
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--preset",
                "smoke",
                "--eps",
                "0,0.1",
                "--steps",
                "5",
                "--test-subset",
                "64",
                "--out",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert [p["eps"] for p in result["curve"]] == [0.0, 0.1]
    assert set(result["sanity"]) >= {"eps0_equals_clean", "monotone_in_eps", "large_eps_near_chance"}


def test_study_sat_prints_a_table(tmp_path, capsys):
    args = [
        "study",
        "sat",
        "--preset",
        "smoke",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--activations",
        "relu,silu",
        "--probes",
        "both",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    for label in ("relu", "silu", "relu+smooth(both)"):
        assert f"| {label} | 2 |" in table
    assert len(json.loads((tmp_path / "table.json").read_text())["rows"]) == 6


def test_bad_input_is_a_clean_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing"), "--preset", "smoke"]) == 2
    assert "not a robustlab checkpoint" in capsys.readouterr().err
