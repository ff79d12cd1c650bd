#!/usr/bin/env bash
# The rules without a server: promtool's check and unit tests (deploy/prometheus/tests.yml: every alert fires and
# stays quiet, a rebooted node included), the PrometheusRule made from the rules file and equal to it, the scrape
# example valid, and every recording rule the dashboard names defined. A few seconds; part of make prometheus-test.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=deploy/prometheus
fail() { echo "prometheus check: $*" >&2; exit 1; }

promtool check rules "$dir/berth-rules.yml"
(cd "$dir" && promtool test rules tests.yml)
bash "$dir/generate.sh" --check
# The text is generated; this says the groups a prometheus-operator reads are the very groups Prometheus reads.
/usr/bin/python3 - "$dir" <<'PY'
import json, re, sys, yaml
d = sys.argv[1]
rules = yaml.safe_load(open(f"{d}/berth-rules.yml"))
crd = yaml.safe_load(open(f"{d}/berth-prometheusrule.yaml"))
assert crd["apiVersion"] == "monitoring.coreos.com/v1" and crd["kind"] == "PrometheusRule", "not a PrometheusRule"
assert crd["spec"]["groups"] == rules["groups"], "the PrometheusRule's groups differ from berth-rules.yml"
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
for a in alerts:
    ann = a.get("annotations", {})
    assert ann.get("summary") and ann.get("description"), f"{a['alert']}: needs a summary and a description"
    assert "berth-agent " in ann["description"], f"{a['alert']}: the description must say what to run"
    assert a.get("labels", {}).get("severity") in ("warning", "critical"), f"{a['alert']}: severity"
tests = open(f"{d}/tests.yml").read()
for a in alerts:
    assert re.search(rf"alertname: {a['alert']}\b[^\n]*\n\s*exp_alerts:\n\s*- exp_labels", tests), f"{a['alert']}: no promtool test where it fires"
    assert re.search(rf"alertname: {a['alert']}, exp_alerts: \[\]|alertname: {a['alert']}\n\s*exp_alerts: \[\]", tests), f"{a['alert']}: no promtool test where it stays quiet"
recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
dash = json.load(open(f"{d}/berth-dashboard.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
assert dash["panels"] and all(p["targets"] for p in dash["panels"]), "a dashboard panel without a query"
for e in exprs:
    for name in re.findall(r"berth:[a-z0-9_:]+", e):
        assert name in recorded, f"the dashboard uses {name}, which no rule records"
print(f"prometheus check: {len(alerts)} alerts with tests that fire and stay quiet, {len(recorded)} recording rules, {len(exprs)} dashboard queries")
PY
promtool check config <(sed "s|/etc/prometheus/berth-rules.yml|$PWD/$dir/berth-rules.yml|" "$dir/scrape-config.yml") >/dev/null || fail "scrape-config.yml is not a valid Prometheus config"
echo "prometheus check: ok"
