"""Checks on rendered Kubernetes manifests that no schema can make, and the split that feeds the
schema validators (scripts/check_k8s.sh drives it).

    check_manifests.py check NAME RENDERED.yaml OUTDIR
        Checks one rendered overlay against the rules below; writes OUTDIR/NAME.builtin.yaml
        (built-in kinds, for kubernetes-validate) and OUTDIR/NAME.crs.json (custom resources,
        for validate_crs.mjs). Exit 1 on any failed rule.
    check_manifests.py secret-template PATH
        The Secret template must leave every value empty.
    check_manifests.py mutants DEV.yaml PROD.yaml OUTDIR
        Writes deliberately broken copies that each check must reject (see check_k8s.sh).

The rules: every pod non-root with a read-only root filesystem, no privilege escalation, every
capability dropped, seccomp RuntimeDefault, an emptyDir on /tmp, requests and a memory limit;
probes on each part's real health endpoints and port; every APP__ variable a real setting
(crates/settings) and every secret key one the Secret template names; each part given the
Secret keys it needs and no other; no Secret rendered; the worker's KEDA maxReplicaCount equal
to the Cohere-budget formula, its queue the stage queue, and the scheduler's window deep enough
for the trigger to reach maxReplicaCount; Services, PDBs, autoscalers and monitors pointing at
what exists; a default-deny NetworkPolicy, each part let out to DNS, Postgres and RabbitMQ,
HTTPS out only for the parts that need it, and Prometheus let in on each part's port.
"""

import copy
import json
import math
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "crates/settings/src"
SECRET_TEMPLATE = ROOT / "k8s/base/secret.example.yaml"
SECRET_NAME = "image-pipelines-secrets"
CR_GROUPS = ("keda.sh", "monitoring.coreos.com")
LATENCY_ANNOTATION = "image-pipelines/cohere-latency-seconds"

# The health endpoints each part serves, and on which port (README.md, docs/redriver.md,
# k8s/base/scheduler-deployment.yaml); whether it goes out on HTTPS (object store, Cohere).
PARTS = {
    "api": {"port": 8080, "liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz", "https": True},
    "worker": {"port": 9091, "liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz", "https": True},
    "scheduler": {"port": 9093, "liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz", "https": False},
    "redriver": {"port": 8090, "liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz", "https": False},
}

# The Secret keys each workload (by its component label) must be given, and may be given.
S3_KEYS = {"APP__STORAGE__S3__ACCESS_KEY_ID", "APP__STORAGE__S3__SECRET_ACCESS_KEY"}
SECRETS = {
    "api": ({"APP__DATABASE__URL", "APP__AMQP__URL"}, S3_KEYS),
    "worker": ({"APP__DATABASE__URL", "APP__AMQP__URL", "APP__COHERE__API_KEY"}, S3_KEYS),
    "scheduler": ({"APP__DATABASE__URL", "APP__AMQP__URL"}, set()),
    "redriver": ({"APP__DATABASE__URL", "APP__AMQP__URL"}, {"APP__REDRIVER__ADMIN_TOKEN"}),
    "migrate": ({"APP__DATABASE__URL"}, set()),
}
# The HPA's default tolerance: it scales only when the metric is more than 10 % off target.
HPA_TOLERANCE = 0.1


def load(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]


def is_cr(obj):
    return obj.get("apiVersion", "").split("/")[0] in CR_GROUPS


def ref(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def setting_keys():
    """APP__SECTION__KEY names the settings crate accepts: (exact keys, prefixes of map keys)."""
    source = "\n".join(path.read_text() for path in sorted(SETTINGS.glob("*.rs")))
    structs = {}
    for name, body in re.findall(r"pub struct (\w+) \{(.*?)\n\}", source, re.S):
        structs[name] = re.findall(r"^\s*pub (\w+): ([^\n]+?),?$", body, re.M)
    exact, prefixes = set(), set()

    def walk(struct, path):
        for field, kind in structs.get(struct, []):
            key = path + [field.upper()]
            inner = re.sub(r"^Option<(.*)>$", r"\1", kind.strip())
            if inner in structs:
                walk(inner, key)
            elif "Map<" in inner:
                prefixes.add("APP__" + "__".join(key) + "__")
            else:
                exact.add("APP__" + "__".join(key))

    for section, kind in structs.get("Settings", []):
        if kind.strip() in structs:
            walk(kind.strip(), [section.upper()])
        else:
            # A section whose type lives elsewhere: accept anything under it.
            prefixes.add(f"APP__{section.upper()}__")
    return exact, prefixes


def template_secret_keys():
    secret = load(SECRET_TEMPLATE)[0]
    return set((secret.get("stringData") or {}) | (secret.get("data") or {}))


class Checker:
    def __init__(self, name, objects):
        self.name = name
        self.objects = objects
        self.failures = []
        self.passed = 0

    def expect(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failures.append(what)

    def of_kind(self, kind):
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind, name):
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def run(self):
        self.no_secrets()
        configmaps = {o["metadata"]["name"]: o for o in self.of_kind("ConfigMap")}
        self.expect(len(configmaps) == 1, f"exactly one ConfigMap (found {sorted(configmaps)})")
        config = next(iter(configmaps.values()), {}).get("data", {})
        exact, prefixes = setting_keys()
        secret_keys = template_secret_keys()

        def known_setting(key):
            return key in exact or any(key.startswith(p) for p in prefixes)

        for key in config:
            self.expect(known_setting(key), f"ConfigMap key {key} is not a setting in crates/settings")

        workloads = self.of_kind("Deployment") + self.of_kind("Job")
        for workload in workloads:
            self.pod(workload, configmaps, known_setting, secret_keys)
        deployments = {o["metadata"]["name"]: o for o in self.of_kind("Deployment")}
        for part, expected in PARTS.items():
            self.expect(part in deployments, f"a Deployment {part}")
            if part in deployments:
                self.probes(deployments[part], expected)
        self.autoscaling(deployments, config, secret_keys)
        self.services_and_budgets(deployments)
        self.network_policies(deployments)
        self.monitors(deployments)
        return self

    def no_secrets(self):
        for secret in self.of_kind("Secret"):
            self.expect(False, f"{ref(secret)} is rendered: Secrets are created out of band")

    def pod(self, workload, configmaps, known_setting, secret_keys):
        where = ref(workload)
        spec = workload["spec"]["template"]["spec"]
        pod_sc = spec.get("securityContext", {})
        self.expect(pod_sc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot: true")
        self.expect(
            pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
            f"{where}: pod seccompProfile RuntimeDefault",
        )
        self.expect(
            spec.get("automountServiceAccountToken") is False,
            f"{where}: automountServiceAccountToken: false (nothing here calls the Kubernetes API)",
        )
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        given = set()
        for container in spec.get("initContainers", []) + spec["containers"]:
            at = f"{where} container {container['name']}"
            sc = container.get("securityContext", {})
            self.expect(sc.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation: false")
            self.expect(sc.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem: true")
            caps = sc.get("capabilities", {})
            self.expect(caps.get("drop") == ["ALL"] and not caps.get("add"), f"{at}: capabilities drop [ALL], add none")
            self.expect(sc.get("privileged") in (None, False), f"{at}: not privileged")
            self.expect(sc.get("runAsNonRoot", True) is True, f"{at}: does not override runAsNonRoot")
            resources = container.get("resources", {})
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            self.expect("cpu" in requests and "memory" in requests, f"{at}: cpu and memory requests")
            self.expect("memory" in limits, f"{at}: a memory limit")
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            self.expect(
                len(tmp) == 1 and tmp[0]["name"] in empty_dirs,
                f"{at}: /tmp is an emptyDir (the root filesystem is read-only)",
            )
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    name = source["configMapRef"]["name"]
                    self.expect(name in configmaps, f"{at}: envFrom ConfigMap {name} is rendered")
                if "secretRef" in source:
                    self.expect(False, f"{at}: envFrom a whole Secret; name each key instead")
            for env in container.get("env", []):
                if env["name"].startswith("APP__"):
                    self.expect(known_setting(env["name"]), f"{at}: {env['name']} is not a setting in crates/settings")
                secret_ref = env.get("valueFrom", {}).get("secretKeyRef")
                if secret_ref:
                    given.add(secret_ref["key"])
                    self.expect(
                        secret_ref["name"] == SECRET_NAME and secret_ref["key"] in secret_keys,
                        f"{at}: secret {secret_ref['name']}/{secret_ref['key']} is in k8s/base/secret.example.yaml",
                    )
        component = workload["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        self.expect(component in SECRETS, f"{where}: pods labelled with a known component (found {component})")
        if component in SECRETS:
            needed, optional = SECRETS[component]
            self.expect(needed <= given, f"{where}: given the Secret keys it needs (missing {sorted(needed - given)})")
            self.expect(
                given <= needed | optional,
                f"{where}: given only the Secret keys it uses (not {sorted(given - needed - optional)})",
            )

    def probes(self, deployment, expected):
        where = ref(deployment)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        self.expect(
            expected["port"] in ports.values(),
            f"{where}: container port {expected['port']} (found {sorted(ports.values())})",
        )
        for kind in ("liveness", "readiness", "startup"):
            probe = container.get(f"{kind}Probe", {}).get("httpGet")
            if not probe:
                self.expect(False, f"{where}: an HTTP {kind} probe")
                continue
            port = ports.get(probe["port"], probe["port"])
            self.expect(
                probe["path"] == expected[kind] and port == expected["port"],
                f"{where}: {kind} probe on {expected[kind]} port {expected['port']} "
                f"(found {probe['path']} port {probe['port']})",
            )

    def autoscaling(self, deployments, config, secret_keys):
        hpas = self.of_kind("HorizontalPodAutoscaler")
        scaled = self.of_kind("ScaledObject")
        targets = [h["spec"]["scaleTargetRef"]["name"] for h in hpas] + [
            s["spec"]["scaleTargetRef"]["name"] for s in scaled
        ]
        for name in targets:
            self.expect(name in deployments, f"autoscaler target {name} is a rendered Deployment")
            self.expect(
                "replicas" not in deployments.get(name, {}).get("spec", {"replicas": 0}),
                f"Deployment/{name}: no `replicas` (its autoscaler owns the count)",
            )
        self.expect(len(set(targets)) == len(targets), f"one autoscaler per Deployment (targets {targets})")
        self.expect(
            [s["spec"]["scaleTargetRef"]["name"] for s in scaled] == ["worker"],
            "the workers are scaled by one KEDA ScaledObject",
        )
        for so in scaled:
            self.keda(so, config, secret_keys)

    def keda(self, so, config, secret_keys):
        where = ref(so)
        spec = so["spec"]
        try:
            rate = int(config["APP__COHERE__REQUESTS_PER_MINUTE"]) / 60
            concurrency = int(config["APP__WORKER__CONCURRENCY"])
            latency = float(so["metadata"]["annotations"][LATENCY_ANNOTATION])
        except (KeyError, ValueError) as err:
            self.expect(
                False,
                f"{where}: the budget formula needs APP__COHERE__REQUESTS_PER_MINUTE and "
                f"APP__WORKER__CONCURRENCY in the ConfigMap and the {LATENCY_ANNOTATION} annotation ({err!r})",
            )
            return
        minimum = spec.get("minReplicaCount", 0)
        wanted = max(minimum, math.ceil(rate * latency / concurrency))
        self.expect(
            spec.get("maxReplicaCount") == wanted,
            f"{where}: maxReplicaCount {spec.get('maxReplicaCount')} should be max(minReplicaCount {minimum}, "
            f"ceil({rate:g}/s x {latency:g} s / {concurrency})) = {wanted}",
        )
        queue = config.get("APP__AMQP__PREFIX", "pipelines") + ".stage"
        auths = {o["metadata"]["name"]: o for o in self.of_kind("TriggerAuthentication")}
        for trigger in spec["triggers"]:
            self.expect(trigger["type"] == "rabbitmq", f"{where}: a rabbitmq trigger")
            self.queue_depth(where, trigger, spec.get("maxReplicaCount"), config, concurrency)
            self.expect(
                trigger.get("metadata", {}).get("queueName") == queue,
                f"{where}: trigger queue {trigger.get('metadata', {}).get('queueName')} is the stage queue {queue}",
            )
            self.expect(
                "host" not in trigger.get("metadata", {}),
                f"{where}: no broker URL in the trigger (it comes from the TriggerAuthentication)",
            )
            auth = auths.get(trigger.get("authenticationRef", {}).get("name"))
            self.expect(auth is not None, f"{where}: authenticationRef names a rendered TriggerAuthentication")
            if auth:
                refs = auth["spec"].get("secretTargetRef", [])
                self.expect(
                    any(
                        r["parameter"] == "host" and r["name"] == SECRET_NAME and r["key"] in secret_keys
                        for r in refs
                    ),
                    f"{ref(auth)}: host from {SECRET_NAME}, a key the Secret template names",
                )

    def queue_depth(self, where, trigger, maximum, config, concurrency):
        """The scheduler keeps at most its window of items released, so the stage queue never
        holds more than the window less what the workers hold (their prefetch): the trigger's
        messages-per-replica must let that depth add the last replica, HPA tolerance included."""
        metadata = trigger.get("metadata", {})
        self.expect(
            metadata.get("mode") == "QueueLength",
            f"{where}: trigger mode QueueLength (the scheduler's window bounds the queue's length)",
        )
        try:
            window = int(config["APP__SCHEDULER__WINDOW"])
            value = float(metadata["value"])
            prefetch = int(config.get("APP__WORKER__PREFETCH", "0")) or 2 * concurrency
        except (KeyError, ValueError) as err:
            self.expect(
                False,
                f"{where}: the queue-depth rule needs APP__SCHEDULER__WINDOW in the ConfigMap and the "
                f"trigger's value ({err!r})",
            )
            return
        self.expect(
            value < window,
            f"{where}: trigger value {value:g} below the scheduler's window {window} (the queue never gets deeper)",
        )
        if isinstance(maximum, int):
            needed = (maximum - 1) * ((1 + HPA_TOLERANCE) * value + prefetch)
            self.expect(
                window > needed,
                f"{where}: APP__SCHEDULER__WINDOW {window} must exceed (maxReplicaCount {maximum} - 1) x "
                f"(1.1 x trigger value {value:g} + prefetch {prefetch}) = {needed:g}, or the stage queue never "
                f"gets deep enough for KEDA to add the last worker",
            )

    def services_and_budgets(self, deployments):
        def pods_selected(selector):
            labels = selector.get("matchLabels", selector)
            return [
                d
                for d in deployments.values()
                if labels and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in labels.items())
            ]

        for service in self.of_kind("Service"):
            selected = pods_selected(service["spec"]["selector"])
            self.expect(len(selected) == 1, f"{ref(service)}: selects one Deployment's pods")
            for port in service["spec"]["ports"]:
                names = {
                    p.get("name")
                    for d in selected
                    for c in d["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                self.expect(port["targetPort"] in names, f"{ref(service)}: targetPort {port['targetPort']} is a named container port")

        least = {h["spec"]["scaleTargetRef"]["name"]: h["spec"].get("minReplicas", 1) for h in self.of_kind("HorizontalPodAutoscaler")}
        least |= {s["spec"]["scaleTargetRef"]["name"]: s["spec"].get("minReplicaCount", 0) for s in self.of_kind("ScaledObject")}
        for pdb in self.of_kind("PodDisruptionBudget"):
            selected = pods_selected(pdb["spec"]["selector"])
            self.expect(len(selected) == 1, f"{ref(pdb)}: selects one Deployment's pods")
            minimum = pdb["spec"].get("minAvailable")
            for d in selected:
                replicas = least.get(d["metadata"]["name"], d["spec"].get("replicas", 1))
                self.expect(
                    not isinstance(minimum, int) or minimum < replicas,
                    f"{ref(pdb)}: minAvailable {minimum} with as few as {replicas} replicas would block node drains",
                )
        for name in ("api", "worker", "scheduler"):
            self.expect(
                any(d["metadata"]["name"] == name for p in self.of_kind("PodDisruptionBudget") for d in pods_selected(p["spec"]["selector"])),
                f"Deployment/{name} has a PodDisruptionBudget",
            )

    def network_policies(self, deployments):
        policies = self.of_kind("NetworkPolicy")
        self.expect(
            any(
                p["spec"]["podSelector"] == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                and not p["spec"].get("ingress") and not p["spec"].get("egress")
                for p in policies
            ),
            "a default-deny NetworkPolicy (all pods, ingress and egress)",
        )

        def selects(policy, labels):
            selector = policy["spec"]["podSelector"]
            if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
                return False
            for expr in selector.get("matchExpressions", []):
                if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
                    return False
                if expr["operator"] != "In":
                    return False
            return True

        for part, expected in PARTS.items():
            if part not in deployments:
                continue
            labels = deployments[part]["spec"]["template"]["metadata"]["labels"]
            ingress_ports = {
                port.get("port")
                for p in policies
                if selects(p, labels) and "Ingress" in p["spec"].get("policyTypes", [])
                for rule in p["spec"].get("ingress", [])
                for port in rule.get("ports", [])
            }
            self.expect(
                expected["port"] in ingress_ports,
                f"NetworkPolicy lets Prometheus (at least) reach {part} on {expected['port']}",
            )
            egress_rules = [
                rule
                for p in policies
                if selects(p, labels) and "Egress" in p["spec"].get("policyTypes", [])
                for rule in p["spec"].get("egress", [])
            ]
            egress_ports = {port.get("port") for rule in egress_rules for port in rule.get("ports", [])}
            any_port = any(not rule.get("ports") for rule in egress_rules)
            self.expect({53, 5432}.issubset(egress_ports), f"NetworkPolicy lets {part} reach DNS and Postgres")
            self.expect(bool({5671, 5672} & egress_ports), f"NetworkPolicy lets {part} reach RabbitMQ")
            if expected["https"]:
                self.expect(443 in egress_ports, f"NetworkPolicy lets {part} reach HTTPS (443)")
            else:
                self.expect(
                    443 not in egress_ports and not any_port,
                    f"NetworkPolicy lets {part} out only where it must go (no HTTPS, no rule without ports)",
                )

    def monitors(self, deployments):
        service_monitors = self.of_kind("ServiceMonitor")
        pod_monitors = self.of_kind("PodMonitor")
        if not service_monitors and not pod_monitors:
            return
        scraped = {}
        for sm in service_monitors:
            labels = sm["spec"]["selector"].get("matchLabels", {})
            services = [
                s for s in self.of_kind("Service") if all(s["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            ]
            self.expect(len(services) == 1, f"{ref(sm)}: selects one rendered Service by its labels")
            for service in services:
                ports = {p["name"]: p for p in service["spec"]["ports"]}
                for endpoint in sm["spec"]["endpoints"]:
                    self.expect(endpoint.get("port") in ports, f"{ref(sm)}: port {endpoint.get('port')} is a port of {ref(service)}")
                    self.expect(endpoint.get("path", "/metrics") == "/metrics", f"{ref(sm)}: scrapes /metrics")
                selector = service["spec"]["selector"]
                for d in deployments.values():
                    if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items()):
                        scraped[d["metadata"]["name"]] = sm
        for pm in pod_monitors:
            labels = pm["spec"]["selector"].get("matchLabels", {})
            for d in deployments.values():
                if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in labels.items()):
                    names = {p.get("name") for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                    for endpoint in pm["spec"]["podMetricsEndpoints"]:
                        self.expect(endpoint.get("port") in names, f"{ref(pm)}: port {endpoint.get('port')} is a port of {ref(d)}")
                    scraped[d["metadata"]["name"]] = pm
        for part in PARTS:
            self.expect(part in scraped, f"a ServiceMonitor or PodMonitor scrapes {part}")
        for monitor in service_monitors + pod_monitors:
            self.expect(
                monitor["spec"].get("jobLabel") == "app.kubernetes.io/component",
                f"{ref(monitor)}: jobLabel app.kubernetes.io/component (the alert rules select job=\"api\" etc.)",
            )


def check(name, rendered, outdir):
    objects = load(rendered)
    outdir = pathlib.Path(outdir)
    builtin = [o for o in objects if not is_cr(o)]
    crs = [{"source": name, "object": o} for o in objects if is_cr(o)]
    (outdir / f"{name}.builtin.yaml").write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    (outdir / f"{name}.crs.json").write_text(json.dumps(crs))
    checker = Checker(name, objects).run()
    for failure in checker.failures:
        print(f"FAIL {name}: {failure}")
    kinds = sorted({o["kind"] for o in objects})
    print(
        f"{'ok  ' if not checker.failures else 'FAIL'} {name}: {len(objects)} objects ({', '.join(kinds)}); "
        f"{checker.passed} rules held, {len(checker.failures)} broken"
    )
    return 1 if checker.failures else 0


def secret_template(path):
    secret = load(path)
    ok = (
        len(secret) == 1
        and secret[0]["kind"] == "Secret"
        and secret[0]["metadata"]["name"] == SECRET_NAME
        and not secret[0].get("data")
        and all(value == "" for value in (secret[0].get("stringData") or {}).values())
    )
    print(f"{'ok  ' if ok else 'FAIL'} {path}: the Secret {SECRET_NAME} with every value empty")
    return 0 if ok else 1


def mutants(dev_path, prod_path, outdir):
    """Broken copies of the rendered overlays, one fault each. Built-in kinds go to files for
    kubernetes-validate, custom resources to one JSON list for validate_crs.mjs (each marked as
    expected to fail), rule breakers to rendered files for `check`."""
    outdir = pathlib.Path(outdir)
    dev, prod = load(dev_path), load(prod_path)

    def find(objects, kind, name):
        return copy.deepcopy(next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name))

    builtin = {}
    d = find(dev, "Deployment", "worker")
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    builtin["deployment-unknown-field"] = d
    d = find(dev, "Deployment", "api")
    d["spec"]["revisionHistoryLimit"] = "five"
    builtin["deployment-wrong-type"] = d
    d = find(dev, "NetworkPolicy", "postgres")
    d["spec"]["policyTypes"] = "Egress"
    builtin["networkpolicy-wrong-type"] = d
    d = find(dev, "HorizontalPodAutoscaler", "api")
    d["apiVersion"] = "autoscaling/v3"
    builtin["hpa-unknown-version"] = d
    for name, obj in builtin.items():
        (outdir / f"mutant-{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))

    crs = []

    def cr(fault, obj):
        crs.append({"source": f"mutant {fault}", "object": obj, "expect": "invalid"})

    so = find(dev, "ScaledObject", "worker")
    so["spec"]["maxReplicas"] = so["spec"].pop("maxReplicaCount")
    cr("unknown field spec.maxReplicas", so)
    so = find(dev, "ScaledObject", "worker")
    so["spec"]["maxReplicaCount"] = str(so["spec"]["maxReplicaCount"])
    cr("string maxReplicaCount", so)
    so = find(dev, "ScaledObject", "worker")
    del so["spec"]["scaleTargetRef"]
    cr("no scaleTargetRef", so)
    ta = find(dev, "TriggerAuthentication", "worker-rabbitmq")
    ta["spec"]["secretTargetRef"][0]["secret"] = ta["spec"]["secretTargetRef"][0].pop("name")
    cr("secretTargetRef without name", ta)
    sm = find(prod, "ServiceMonitor", "api")
    sm["spec"]["endpoints"][0]["intervall"] = "30s"
    cr("unknown endpoint field", sm)
    pm = find(prod, "PodMonitor", "worker")
    pm["spec"]["podMetricsEndpoints"] = {"port": "health"}
    cr("podMetricsEndpoints not a list", pm)
    rule = find(prod, "PrometheusRule", "image-pipelines")
    rule["spec"]["groups"][0]["rules"][0]["for"] = 300
    cr("numeric `for`", rule)
    (outdir / "mutants.crs.json").write_text(json.dumps(crs))

    rules = {}
    objects = copy.deepcopy(dev)
    so = next(o for o in objects if o["kind"] == "ScaledObject")
    so["spec"]["maxReplicaCount"] += 4
    rules["keda-max-beyond-budget"] = objects
    objects = copy.deepcopy(dev)
    worker = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "worker")
    worker["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    rules["writable-root-filesystem"] = objects
    objects = copy.deepcopy(dev)
    api = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/ready"
    rules["probe-wrong-path"] = objects
    objects = copy.deepcopy(dev)
    worker = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "worker")
    worker["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "APP__WORKER__CONCURENCY", "value": "8"})
    rules["misspelt-setting"] = objects
    objects = copy.deepcopy(dev)
    scheduler = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "scheduler")
    scheduler["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "APP__SCHEDULER__WINDOWS", "value": "64"})
    rules["misspelt-scheduler-setting"] = objects
    objects = copy.deepcopy(prod)
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    config["data"]["APP__SCHEDULER__WINDOW"] = "128"
    rules["window-too-shallow-for-keda"] = objects
    objects = copy.deepcopy(dev)
    scheduler = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "scheduler")
    scheduler["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "APP__COHERE__API_KEY", "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "APP__COHERE__API_KEY"}}}
    )
    rules["scheduler-given-cohere-key"] = objects
    objects = copy.deepcopy(dev)
    https = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "https-out")
    https["spec"]["podSelector"]["matchExpressions"][0]["values"].append("scheduler")
    rules["scheduler-https-out"] = objects
    objects = copy.deepcopy(prod)
    scheduler = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "scheduler")
    scheduler["spec"]["replicas"] = 1
    rules["scheduler-pdb-blocks-drain"] = objects
    for name, objs in rules.items():
        (outdir / f"mutant-rule-{name}.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    print(" ".join(sorted(builtin)), "|", " ".join(sorted(rules)))
    return 0


def main(argv):
    if len(argv) == 4 and argv[0] == "check":
        return check(*argv[1:])
    if len(argv) == 2 and argv[0] == "secret-template":
        return secret_template(argv[1])
    if len(argv) == 4 and argv[0] == "mutants":
        return mutants(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
