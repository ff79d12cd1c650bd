#!/usr/bin/env python3
"""A real Prometheus (Debian's) scrapes a real `berth-agent run` (the published binary) with the shipped rules.

The rules Prometheus loads are deploy/prometheus/berth-rules.yml with one documented substitution: every `for: Nm`
becomes `for: Ns` (minutes to seconds), so that alerts fire within the test; expressions and thresholds are the
shipped ones (promtool's unit tests cover the real durations). The test fills a berth range through the `berth`
plugin and a guarded host-local network through Debian's host-local (its conflist in the agent's cniConfDirs), a
second host-local network whose config the node does not have, and points a second target of the job at a closed
port. It waits, polling Prometheus's API with bounded deadlines, until each step is scraped and until
BerthRangeNearlyFull and BerthRangeExhausted fire for both sized networks and BerthAgentDown for the closed port,
and that no other alert fires; it checks the guarded networks' series, `berth-agent check`, and that every
dashboard query returns data. Everything listens on 127.0.0.1 only, on ports the kernel picks; every process it
starts is stopped at the end, also on failure. Writes artifacts/prometheus/ (alerts.json, guarded-series.json,
series.json for tests/prometheus/render.py). Needs root for nothing; about a minute.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(REPO, "artifacts", "bin")
RULES = os.path.join(REPO, "deploy", "prometheus", "berth-rules.yml")
DASHBOARD = os.path.join(REPO, "deploy", "prometheus", "berth-dashboard.json")
OUT = os.path.join(REPO, "artifacts", "prometheus")
HOST_LOCAL = "/usr/lib/cni/host-local"
FILL = 12  # of 13 addresses in a /28: 92 % used, 1 free

procs = []


def fail(message):
    print(f"real-prometheus: FAIL: {message}", file=sys.stderr)
    raise SystemExit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def await_(what, check, seconds):
    """Polls check() until it returns something truthy; fails naming what after the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            fail(f"{what}: not within {seconds} s")
        time.sleep(0.2)


def stop(signum, _frame):
    # SIGTERM, SIGINT or the whole run's deadline: unwind through main's finally, which stops what this started.
    raise SystemExit(f"real-prometheus: stopped by signal {signum}" if signum != signal.SIGALRM else "real-prometheus: FAIL: over 240 s")


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, stop)
    signal.alarm(240)
    for path in (os.path.join(BIN, "berth"), os.path.join(BIN, "berth-agent"), HOST_LOCAL, shutil.which("prometheus") or "/nonexistent"):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run make build (and apt-get install prometheus containernetworking-plugins)")
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="berth-prometheus-")
    try:
        run(tmp)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    started = time.time()
    d = lambda *p: os.path.join(tmp, *p)
    for sub in ("data", "networks", "net.d", "netns", "prometheus"):
        os.makedirs(d(sub))
    with open(d("boot_id"), "w") as f:
        f.write("boot-prometheus-test\n")
    env = dict(os.environ, BERTH_BOOT_ID_FILE=d("boot_id"))
    store = d("data", "berth.db")
    agent_config = d("agent.json")
    with open(agent_config, "w") as f:
        json.dump({"store": store, "intervalSeconds": 1, "metricsAddress": "127.0.0.1:0", "runtimeSockets": [],
                   "hostLocal": {"dirs": [d("networks")], "netnsDirs": [d("netns")]}, "cniConfDirs": [d("net.d")]}, f)

    berth_net = {"cniVersion": "1.0.0", "name": "prom-berth", "type": "bridge",
                 "ipam": {"type": "berth", "ranges": [[{"subnet": "10.93.0.0/28"}]], "dataDir": d("data")}}
    guarded_ipam = {"type": "host-local", "ranges": [[{"subnet": "10.94.0.0/28"}]], "dataDir": d("networks")}
    guarded_net = {"cniVersion": "1.0.0", "name": "prom-hl", "type": "bridge", "ipam": guarded_ipam}
    lost_net = {"cniVersion": "1.0.0", "name": "prom-lost", "type": "bridge",
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.95.0.0/28"}]], "dataDir": d("networks")}}
    # The node's CNI configs: the guarded network's conflist (what the runtime reads), and one a runtime would choke on.
    with open(d("net.d", "10-prom-hl.conflist"), "w") as f:
        json.dump({"cniVersion": "1.0.0", "name": "prom-hl", "plugins": [{"type": "bridge", "bridge": "h24prom0", "ipam": guarded_ipam}]}, f)
    with open(d("net.d", "99-broken.conf"), "w") as f:
        f.write('{"name": ')

    # The agent first: its recovery, with no runtime in this boot, would take files made before it for an earlier boot's.
    log = open(d("agent.log"), "w+")
    agent = subprocess.Popen([os.path.join(BIN, "berth-agent"), "run", "--store", store, "--config", agent_config],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(agent)

    def metrics_url():
        log.seek(0)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", log.read())
        if agent.poll() is not None:
            fail(f"berth-agent exited with {agent.returncode}: {open(d('agent.log')).read()[-2000:]}")
        return m and int(m.group(1))
    agent_port = await_("berth-agent serves metrics", metrics_url, 20)

    # The shipped rules with the one documented substitution; nothing else may differ.
    shipped = open(RULES).read()
    test_copy = re.sub(r"(?m)^(\s+for: \d+)m$", r"\1s", shipped)
    strip_for = lambda text: [l for l in text.splitlines() if not re.match(r"\s+for: ", l)]
    if strip_for(shipped) != strip_for(test_copy) or test_copy == shipped:
        fail("the test copy of the rules must differ from berth-rules.yml in its for: lines only")
    with open(d("rules.yml"), "w") as f:
        f.write(test_copy)
    prom_port = free_port()
    with open(d("prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{d('rules.yml')}"]
scrape_configs:
  - job_name: berth-agent
    scrape_timeout: 900ms
    static_configs:
      # The real agent, and a node whose agent is down (nothing listens on port 1).
      - targets: ["127.0.0.1:{agent_port}", "127.0.0.1:1"]
""")
    prom_log = open(d("prometheus.log"), "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={d('prometheus.yml')}", f"--storage.tsdb.path={d('prometheus')}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h"],
                            stdout=prom_log, stderr=subprocess.STDOUT)
    procs.append(prom)
    api = f"http://127.0.0.1:{prom_port}"

    def ready():
        if prom.poll() is not None:
            fail(f"prometheus exited with {prom.returncode}: {open(d('prometheus.log')).read()[-2000:]}")
        with urllib.request.urlopen(api + "/-/ready", timeout=2) as r:
            return r.status == 200
    await_("prometheus is ready", ready, 30)

    def query(expr):
        reply = http_json(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if reply.get("status") != "success":
            fail(f"query {expr}: {reply}")
        return reply["data"]["result"]
    await_("prometheus scrapes the agent", lambda: query(f'up{{job="berth-agent",instance="127.0.0.1:{agent_port}"}} == 1'), 20)
    fill_started = time.time()

    def add(plugin, net, container, command="ADD"):
        r = subprocess.run([plugin], input=json.dumps(net).encode(), capture_output=True, timeout=20,
                           env=dict(env, CNI_COMMAND=command, CNI_CONTAINERID=container, CNI_NETNS="/var/run/netns/" + container,
                                    CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni"))
        if r.returncode != 0:
            fail(f"{os.path.basename(plugin)} {command} {container} in {net['name']}: {r.stdout.decode()} {r.stderr.decode()}")

    # Fill one address at a time and wait until Prometheus has scraped it: the ramp the dashboard shows.
    for plugin, net, n in ((os.path.join(BIN, "berth"), berth_net, FILL), (HOST_LOCAL, guarded_net, FILL), (HOST_LOCAL, lost_net, 3)):
        for i in range(1, n + 1):
            add(plugin, net, f"{net['name']}-c{i}")
            await_(f"prometheus sees {i} leased in {net['name']}", lambda: query(f'berth_range_leased{{network="{net["name"]}"}} == {i}'), 20)
    # Releases for the releases panel: a network of berth's where two pods come and go (cni-del).
    churn_net = {"cniVersion": "1.0.0", "name": "prom-churn", "type": "bridge",
                 "ipam": {"type": "berth", "ranges": [[{"subnet": "10.96.0.0/24"}]], "dataDir": d("data")}}
    for i in (1, 2, 3):
        add(os.path.join(BIN, "berth"), churn_net, f"prom-churn-c{i}")
    for i in (1, 2):
        add(os.path.join(BIN, "berth"), churn_net, f"prom-churn-c{i}", "DEL")
    await_("prometheus sees the DELs", lambda: query('berth_releases_total{reason="cni-del"} == 2'), 20)
    filled = time.time()

    expected = {("BerthRangeNearlyFull", "prom-berth"), ("BerthRangeNearlyFull", "prom-hl"),
                ("BerthRangeExhausted", "prom-berth"), ("BerthRangeExhausted", "prom-hl"), ("BerthAgentDown", None)}

    def alerts():
        return http_json(f"{api}/api/v1/alerts")["data"]["alerts"]

    def all_firing():
        now = alerts()
        firing = {(a["labels"]["alertname"], a["labels"].get("network")) for a in now if a["state"] == "firing"}
        return now if expected <= firing else None
    firing = await_("the range and agent-down alerts fire", all_firing, 60)
    stray = {(a["labels"]["alertname"], a["labels"].get("network")) for a in firing} - expected
    if stray:
        fail(f"alerts that should be quiet: {sorted(map(str, stray))}")
    down = [a for a in firing if a["labels"]["alertname"] == "BerthAgentDown"]
    if [a["labels"]["instance"] for a in down] != ["127.0.0.1:1"]:
        fail(f"BerthAgentDown must name only the closed port: {down}")
    with open(os.path.join(OUT, "alerts.json"), "w") as f:
        json.dump(http_json(f"{api}/api/v1/alerts"), f, indent=2)

    # The guarded networks' series: prom-hl sized from its conflist, prom-lost used only.
    guarded = {e: query(e) for e in ('berth_range_addresses{store=~"host-local:.*"}', 'berth_range_leased{store=~"host-local:.*"}',
                                     'berth:range_set_used:ratio{store=~"host-local:.*"}', 'berth:range_set_free:addresses{store=~"host-local:.*"}',
                                     'berth_leases{store=~"host-local:.*"}')}
    with open(os.path.join(OUT, "guarded-series.json"), "w") as f:
        json.dump(guarded, f, indent=2)
    values = lambda e: sorted((s["metric"].get("network", ""), s["metric"].get("range", ""), s["value"][1]) for s in guarded[e])
    sizes, used = values('berth_range_addresses{store=~"host-local:.*"}'), values('berth_range_leased{store=~"host-local:.*"}')
    if sizes != [("prom-hl", "10.94.0.1-10.94.0.14", "13")]:
        fail(f"guarded sizes: {sizes}")
    if used != [("prom-hl", "10.94.0.1-10.94.0.14", str(FILL)), ("prom-lost", "", "3")]:
        fail(f"guarded use: {used}")
    store_label = {s["metric"]["store"] for s in guarded['berth_range_leased{store=~"host-local:.*"}']}
    if store_label != {"host-local:" + d("networks")}:
        fail(f"store label: {store_label}")
    boots = {s["metric"]["boot"]: s["value"][1] for s in guarded['berth_leases{store=~"host-local:.*"}']}
    if boots != {"current": str(FILL + 3), "previous": "0"}:
        fail(f"guarded files by boot: {boots}")

    # check: the two nearly full ranges are findings; the network without a size and the broken config are notes.
    check = subprocess.run([os.path.join(BIN, "berth-agent"), "check", "--store", store, "--config", agent_config],
                           env=env, capture_output=True, text=True, timeout=30)
    for needle in ("range-nearly-full: network prom-berth", "range-nearly-full: host-local network prom-hl",
                   "note: host-local-size-unknown: host-local network prom-lost", "note: cni-config-skipped: CNI config " + d("net.d", "99-broken.conf")):
        if needle not in check.stdout:
            fail(f"berth-agent check does not say '{needle}': {check.stdout}")
    if check.returncode != 1:
        fail(f"berth-agent check exit {check.returncode}, expected 1 (two nearly full ranges)")

    # The agent's log says what the pools cannot: the broken config, the network without a size.
    agent_log = open(d("agent.log")).read()
    for needle in (f"pools: CNI config {d('net.d', '99-broken.conf')}: not a JSON object", "pools: host-local network prom-lost in " + d("networks") + ": size unknown"):
        if needle not in agent_log:
            fail(f"berth-agent's log does not say '{needle}': {agent_log[-3000:]}")

    # Every dashboard query returns data (with the node variable at its "All" value). The ranges end now, on a grid of
    # 1 s steps that ends at now, once Prometheus's ALERTS series holds every firing alert.
    await_("ALERTS holds the firing alerts", lambda: query('count(ALERTS{alertstate="firing"}) >= %d' % len(expected)), 10)
    end = time.time()
    begin = end - int(end - fill_started + 3)
    dashboard = json.load(open(DASHBOARD))
    panels = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$instance", ".+")
            result = query(expr)
            if not result:
                fail(f"dashboard panel '{panel['title']}': {expr} returns nothing")
            rng = http_json(f"{api}/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": expr, "start": begin, "end": end, "step": "1"}))["data"]["result"]
            panels.append({"title": panel["title"], "expr": expr, "legend": target.get("legendFormat", ""), "unit": panel["fieldConfig"]["defaults"].get("unit", ""),
                           "result": rng})
    # Prometheus's own record of the alerts' states over the run: when each went pending, then firing.
    timeline = http_json(f"{api}/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": "ALERTS", "start": begin, "end": end, "step": "1"}))["data"]["result"]
    first = {}
    for s in timeline:
        key = (s["metric"]["alertname"], s["metric"].get("network") or s["metric"]["instance"], s["metric"]["alertstate"])
        first[key] = min(float(t) for t, _ in s["values"]) - fill_started
    with open(os.path.join(OUT, "series.json"), "w") as f:
        json.dump({"start": fill_started, "filled": filled, "panels": panels, "alerts": timeline}, f)

    print(f"real-prometheus: prometheus on 127.0.0.1:{prom_port}, agent on 127.0.0.1:{agent_port}; the fill took {filled - fill_started:.0f} s")
    for (name, where, state), at in sorted(first.items(), key=lambda kv: kv[1]):
        print(f"real-prometheus: ALERTS {name} {where} {state} from {at:.0f} s after the fill started")
    for a in sorted(firing, key=lambda a: (a["labels"]["alertname"], a["labels"].get("network", ""))):
        print(f"real-prometheus: {a['state']} {a['labels']['alertname']} {a['labels'].get('network') or a['labels']['instance']} value={a['value']}: {a['annotations']['summary']}")
    for s in guarded['berth_range_leased{store=~"host-local:.*"}'] + guarded['berth_range_addresses{store=~"host-local:.*"}']:
        print(f"real-prometheus: {s['metric']['__name__']}{{{', '.join(f'{k}={v}' for k, v in s['metric'].items() if k not in ('__name__', 'job'))}}} {s['value'][1]}")
    print(f"real-prometheus: ok: {len(panels)} dashboard queries return data; {time.time() - started:.0f} s; artifacts/prometheus/")


if __name__ == "__main__":
    main()
