import json
import re

from core.cli.main import main

FLOAT_NOISE = re.compile(r"\d\.\d{5,}")  # 0.777999997138977, as JSON prints a float32


def test_train_then_evaluate_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--epochs", "1", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "succeeded" and 0 <= printed["final"]["robust_acc"] <= 1
    assert main(["train", "--preset", "smoke", "--epochs", "1", "--out", str(out)]) == 0  # done: resumed at its end
    table = capsys.readouterr().out
    assert re.search(rf"^checkpoint +{re.escape(str(out))}$", table, re.M)
    assert f"clean {printed['final']['clean_acc']:.1%}" in table
    assert "per-epoch check  epoch 1 · " in table and not FLOAT_NOISE.search(table)
    args = [
        "evaluate",
        str(out),
        "--preset",
        "smoke",
        "--eps",
        "0.1",
        "--eps-grid",
        "0,0.05",
        "--steps",
        "5",
        "--queries",
        "50",
        "--images",
        "64",
        "--min-norm-steps",
        "10",
        "--out",
        str(tmp_path / "eval.json"),
    ]
    assert main([*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "broken_by" not in printed and printed["protocol"]["ensemble"] == "standard"
    result = json.loads((tmp_path / "eval.json").read_text())
    assert printed == {k: v for k, v in result.items() if k != "broken_by"}  # --json: the result, as it was
    assert [p["eps"] for p in result["curve"]] == [0.0, 0.05, 0.1] and len(result["broken_by"]) == 64
    assert result["spec"]["min_norm"]["steps"] == 10
    assert [p["eps"] for p in result["min_norm"]["curve"]] == [0.0, 0.05, 0.1]
    assert result["protocol_label"].startswith("standard (apgd-ce5, apgd-t5, fab-t5, square50), L∞ ε=0.1, 64 images")
    assert set(result["sanity"]) >= {"eps0_equals_clean", "monotone_in_eps", "large_eps_near_chance"}
    assert (
        main([*args[:2], "--preset", "smoke", "--attacks", "apgd-dlr,square", "--queries", "20", "--images", "32"]) == 0
    )
    table = capsys.readouterr().out.splitlines()  # a table for a person, by default
    rows = {line.split("  ")[0]: line for line in table if not line.startswith(" ")}
    first = ["clean", "robust", "protocol", "breakdown", "curve", "warnings", "checkpoint"]
    assert list(rows)[: len(first)] == first and "weights" in rows
    assert re.fullmatch(r"clean +\d{1,3}\.\d%", rows["clean"]) and re.fullmatch(r"robust +\d{1,3}\.\d%", rows["robust"])
    assert "custom (apgd-dlr" in rows["protocol"] and rows["checkpoint"].endswith(str(out))
    attacks = [line.split()[-4] for line in table if line.endswith("broken)")]
    assert len(attacks) == 2 and attacks[0].startswith("apgd-dlr") and attacks[1].startswith("square20")  # --queries
    assert len(table) <= 12 and not FLOAT_NOISE.search("\n".join(table))


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
    assert "Robust accuracy under: standard (apgd-ce10, apgd-t10, fab-t10, square100)" in table
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert len(rows) == 6 and all(r["robust_acc"] <= r["clean_acc"] for r in rows)
    assert all({"pgd_robust_acc", "protocol_label", "breakdown"} <= set(r) for r in rows)


def test_bad_input_is_a_clean_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing"), "--preset", "smoke"]) == 2
    assert "not a robustlab checkpoint" in capsys.readouterr().err


def test_study_methods_compares_pgd_at_and_trades(tmp_path, capsys):
    args = ["study", "methods", "--preset", "smoke", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| pgd | 1 |" in table and "| trades | 1 |" in table
    specs = {p.parent.parent.name: json.loads(p.read_text())["spec"] for p in tmp_path.glob("*/seed0/checkpoint.json")}
    assert specs["trades"]["method"] == "trades" and specs["pgd"]["method"] == "pgd"


def test_study_ablate_trains_each_arm_with_its_ingredient_changed(tmp_path, capsys):
    args = ["study", "ablate", "--preset", "smoke", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path)]
    assert main([*args, "--ablations", "pgd-7"]) == 0
    table = capsys.readouterr().out
    assert "| relu | 1 |" in table and "| pgd-7 | 1 |" in table
    specs = {p.parent.parent.name: json.loads(p.read_text())["spec"] for p in tmp_path.glob("*/seed0/checkpoint.json")}
    assert specs["pgd-7"]["attack"]["steps"] == 7 and specs["relu"]["attack"]["steps"] == 3
    assert {k: v for k, v in specs["pgd-7"].items() if k != "attack"} == {
        k: v for k, v in specs["relu"].items() if k != "attack"
    }
    assert main([*args, "--ablations", "no-weight-decay"]) == 2  # the smoke recipe has none to take away
    assert "no-weight-decay change nothing" in capsys.readouterr().err


def test_certify_a_checkpoint(trained_digits, tmp_path, capsys):
    _, folder, _ = trained_digits
    out = tmp_path / "certified.json"
    args = ["certify", str(folder), "--preset", "smoke", "--images", "6", "--n", "100", "--radii", "0.1,0.3"]
    assert main([*args, "--attack-steps", "3", "--out", str(out)]) == 0
    table = capsys.readouterr().out  # for a person: the certified and empirical accuracy per radius
    assert "r 0.3: " in table and "certified  (empirical" in table and "abstain rate" in table
    assert main([*args, "--attack-steps", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["radius"] for p in printed["curve"]] == [0.0, 0.1, 0.3] and "radii" not in printed
    assert printed["spec"]["smoothing"]["n"] == 100 and printed["spec"]["empirical"]["steps"] == 3
    assert len(json.loads(out.read_text())["radii"]) == 6
    assert main([*args, "--no-attack", "--json"]) == 0
    assert all(p["empirical_acc"] is None for p in json.loads(capsys.readouterr().out)["curve"])
    assert main([*args, "--sigma", "-1"]) == 2
