"""GET /metrics read by an independent parser: Debian's python3-prometheus-client
(text_string_to_metric_families), which refuses anything that breaks the text format; scrape
also checks the Content-Type and the histogram rules. Under a Python that does not see
Debian's packages (a developer's pyenv), importing this runs the script again under
/usr/bin/python3."""

import os
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # The pyenv Python of a developer's shell does not see Debian's packages.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

from hub import check  # noqa: E402


TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Scrape:
    """One scrape: the parsed families and every sample by (name, labels)."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                check(key not in self.samples, "a sample twice: %r" % (key,))
                self.samples[key] = s.value

    def get(self, name, **labels):
        """A sample's value; 0 when absent (a counter not yet seen)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0)

    def type_of(self, family):
        return self.families[family].type


def scrape(h, headers=None, auth=True):
    status, hdrs, data = h.request("GET", "/metrics", headers=headers, auth=auth)
    check(status == 200, "GET /metrics: %d %s" % (status, data[:300]))
    check(hdrs.get("content-type") == TEXT_TYPE, "Content-Type %r" % hdrs.get("content-type"))
    s = Scrape(data.decode("utf-8"))
    check_histograms(s)
    return s


def check_histograms(s):
    """The histogram rules, on what the parser gave: le ascending, buckets cumulative, +Inf
    equal to _count, per label set."""
    for f in s.families.values():
        if f.type != "histogram":
            continue
        series = {}
        for x in f.samples:
            rest = tuple(sorted((k, v) for k, v in x.labels.items() if k != "le"))
            series.setdefault(rest, {"buckets": []})
            if x.name.endswith("_bucket"):
                series[rest]["buckets"].append((float(x.labels["le"]), x.value))
            elif x.name.endswith("_count"):
                series[rest]["count"] = x.value
            elif x.name.endswith("_sum"):
                series[rest]["sum"] = x.value
        for rest, v in series.items():
            b = v["buckets"]
            check(b and b[-1][0] == float("inf"), "%s %s: no +Inf bucket" % (f.name, rest))
            check(all(b[i][0] < b[i + 1][0] and b[i][1] <= b[i + 1][1]
                      for i in range(len(b) - 1)), "%s %s: buckets %r" % (f.name, rest, b))
            check(v.get("count") == b[-1][1], "%s %s: _count %r, +Inf %r"
                  % (f.name, rest, v.get("count"), b[-1][1]))
            check(v.get("sum", -1) >= 0, "%s %s: _sum %r" % (f.name, rest, v.get("sum")))
