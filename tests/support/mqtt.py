"""A real mosquitto broker for the tests of devices over MQTT: its own port, configuration
and password file, and with tls=True a CA, server and client certificates made with openssl."""

import getpass
import json
import os
import subprocess
import tempfile
import time

import hub
from hub import check, free_port

MQTT_USER = "cctvhub"
MQTT_PASSWORD = "broker-secret-for-tests"


def make_tls(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=cctvhub test CA")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
             name + ".csr", "-subj", "/CN=" + name)
        extra = []
        if ext:
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write(ext + "\n")
            extra = ["-extfile", name + ".ext"]
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", *extra)
    return {k: os.path.join(d, k) for k in ("ca.pem", "server.pem", "server.key", "client.pem",
                                            "client.key")}


class Broker:
    """A mosquitto broker on a free port, requiring a user and password (and with tls=True, TLS
    and a client certificate)."""

    def __init__(self, tls=False):
        self.tmp = tempfile.mkdtemp(prefix="cctvhub-mqtt-")
        self.port = free_port()
        self.tls = make_tls(self.tmp) if tls else None
        pw = os.path.join(self.tmp, "passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", pw, MQTT_USER, MQTT_PASSWORD], check=True,
                       capture_output=True)
        os.chmod(pw, 0o600)
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            # user: as root, mosquitto would switch to its own account, which cannot read
            # the password file in our private directory.
            f.write("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                    "persistence false\nlog_dest stderr\nuser %s\n"
                    % (self.port, pw, getpass.getuser()))
            if self.tls:
                f.write("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"
                        % (self.tls["ca.pem"], self.tls["server.pem"], self.tls["server.key"]))
        self.conf = conf
        self.log = open(os.path.join(self.tmp, "broker.log"), "wb")
        self.start()

    def client_args(self):
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-u", MQTT_USER, "-P", MQTT_PASSWORD]
        if self.tls:
            args += ["--cafile", self.tls["ca.pem"], "--cert", self.tls["client.pem"], "--key",
                     self.tls["client.key"]]
        return args

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["mosquitto_pub"] + self.client_args() + ["-t", "probe", "-m", "x"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise hub.Failure("mosquitto did not start")

    def pub(self, topic, payload, qos=1):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        args = ["mosquitto_pub"] + self.client_args() + ["-q", str(qos), "-t", topic]
        args += ["-n"] if payload == "" else ["-m", payload]
        r = subprocess.run(args, capture_output=True, timeout=30)
        check(r.returncode == 0, "mosquitto_pub: %s" % r.stderr)

    def pub_lines(self, topic, lines):
        """Publishes each line as one message (a flood), at QoS 0: the broker queues QoS 1
        messages for a subscriber only up to max_queued_messages and drops the rest, which is
        not what this test is about."""
        r = subprocess.run(["mosquitto_pub"] + self.client_args() + ["-q", "0", "-t", topic, "-l"],
                           input="\n".join(lines).encode() + b"\n", capture_output=True,
                           timeout=120)
        check(r.returncode == 0, "mosquitto_pub -l: %s" % r.stderr)

    def stop(self, close_log=True):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if close_log:
            self.log.close()
