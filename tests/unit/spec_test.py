#!/usr/bin/env python3
"""Check amqp-spec/amqp0-9-1.xml against the published reference.

    spec_test.py [OURS.xml [REFERENCE.xml]]

Our transcription is the generator's only input, so a slip in it (a swapped
field, a wrong index, a lost bit) becomes a wire incompatibility.  This test
compares it, element by element, with the stripped+extended 0-9-1 XML that
RabbitMQ publishes: protocol version, constants and their error classes,
domains, classes, method ids, synchronous/content flags, responses, chassis,
and every field's name, base type (domains resolved) and reserved flag, in
order.  Every difference is printed; any difference fails the test.

The reference is found through $WARREN_SPEC_REF (the file, or the folder
holding it), else in $top_srcdir/../shared/amqp-spec/.  When it is not there
(a tarball build, say) that comparison reports SKIP with exit status 77.

Before that, and whether or not the reference is there, the generator is
run on our XML (twice: the output must be identical) and on broken copies
of it, each of which must stop it with a message naming the problem.
"""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

REF_NAME = "amqp0-9-1.stripped.extended.xml"
SKIP, FAIL, OK = 77, 1, 0

# Differences made on purpose (see the header comment of our XML).  Each
# entry pins what the reference has and what we have, so the test still
# fails if either side moves.
CHASSIS_DEVIATIONS = {
    # The client sends update-secret and the server answers, as RabbitMQ
    # implements it; the reference lists the chassis the other way round.
    "connection.update-secret": (("client",), ("server",)),
    "connection.update-secret-ok": (("server",), ("client",)),
}
PROPERTY_RENAMES = {
    # RabbitMQ and its clients call the 14th Basic property cluster-id.
    ("basic", "reserved"): "cluster-id",
}


def top_srcdir():
    d = os.environ.get("top_srcdir")
    if d:
        return d
    return os.path.normpath(os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", ".."))


def find_reference():
    env = os.environ.get("WARREN_SPEC_REF")
    if env:
        path = os.path.join(env, REF_NAME) if os.path.isdir(env) else env
        if not os.path.isfile(path):
            print("FAIL: WARREN_SPEC_REF=%s: %s not found" % (env, path))
            sys.exit(FAIL)
        return path
    path = os.path.join(top_srcdir(), "..", "shared", "amqp-spec", REF_NAME)
    return path if os.path.isfile(path) else None


class Loaded:
    """The parts of a spec file that matter on the wire, as plain data."""

    def __init__(self, path, problems, label):
        root = ET.parse(path).getroot()
        self.protocol = {k: root.get(k)
                         for k in ("major", "minor", "revision", "port")}
        self.constants = {}
        for c in root.findall("constant"):
            self.constants[c.get("name")] = (c.get("value"), c.get("class"))
        self.domains = {d.get("name"): d.get("type")
                        for d in root.findall("domain")}
        self.classes = {}
        for c in root.findall("class"):
            name = c.get("name")
            self.classes[name] = {
                "index": c.get("index"),
                "handler": c.get("handler"),
                "chassis": tuple(sorted(ch.get("name")
                                        for ch in c.findall("chassis"))),
                "props": [self.field(f, "%s %s property" % (label, name),
                                     problems)
                          for f in c.findall("field")],
                "methods": {},
            }
            for m in c.findall("method"):
                mname = "%s.%s" % (name, m.get("name"))
                what = "%s method %s" % (label, mname)
                self.classes[name]["methods"][m.get("name")] = {
                    "index": m.get("index"),
                    "synchronous": m.get("synchronous", "0"),
                    "content": m.get("content", "0"),
                    "deprecated": m.get("deprecated", "0"),
                    "responses": [r.get("name")
                                  for r in m.findall("response")],
                    "chassis": tuple(sorted(ch.get("name")
                                            for ch in m.findall("chassis"))),
                    "fields": [self.field(f, what, problems)
                               for f in m.findall("field")],
                }

    def field(self, f, what, problems):
        t = f.get("type")
        if t is None:
            t = self.domains.get(f.get("domain"))
            if t is None:
                problems.append("%s field %s: unknown domain %r"
                                % (what, f.get("name"), f.get("domain")))
        return (f.get("name"), t, f.get("reserved", "0") == "1")


def fmt_field(f):
    name, t, reserved = f
    return "%s:%s%s" % (name, t, " (reserved)" if reserved else "")


def compare_list(diffs, what, ours, ref, fmt=repr):
    if ours == ref:
        return
    if len(ours) != len(ref):
        diffs.append("%s: %d entries, reference has %d"
                     % (what, len(ours), len(ref)))
    for i in range(max(len(ours), len(ref))):
        o = fmt(ours[i]) if i < len(ours) else "(none)"
        r = fmt(ref[i]) if i < len(ref) else "(none)"
        if o != r:
            diffs.append("%s #%d: ours %s, reference %s" % (what, i + 1, o, r))


def compare_keys(diffs, what, ours, ref):
    for k in sorted(set(ref) - set(ours)):
        diffs.append("%s %s: missing from ours" % (what, k))
    for k in sorted(set(ours) - set(ref)):
        diffs.append("%s %s: not in the reference" % (what, k))
    return sorted(set(ours) & set(ref))


def compare(ours, ref):
    diffs = []
    for k in sorted(ref.protocol):
        if ours.protocol[k] != ref.protocol[k]:
            diffs.append("protocol %s: ours %s, reference %s"
                         % (k, ours.protocol[k], ref.protocol[k]))

    for name in compare_keys(diffs, "constant", ours.constants,
                             ref.constants):
        if ours.constants[name] != ref.constants[name]:
            diffs.append("constant %s: ours value=%s class=%s, reference "
                         "value=%s class=%s"
                         % ((name,) + ours.constants[name]
                            + ref.constants[name]))

    for name in compare_keys(diffs, "domain", ours.domains, ref.domains):
        if ours.domains[name] != ref.domains[name]:
            diffs.append("domain %s: ours %s, reference %s"
                         % (name, ours.domains[name], ref.domains[name]))

    for cname in compare_keys(diffs, "class", ours.classes, ref.classes):
        oc, rc = ours.classes[cname], ref.classes[cname]
        for k in ("index", "handler", "chassis"):
            if oc[k] != rc[k]:
                diffs.append("class %s %s: ours %s, reference %s"
                             % (cname, k, oc[k], rc[k]))
        ref_props = [(PROPERTY_RENAMES.get((cname, n), n), t, r)
                     for n, t, r in rc["props"]]
        compare_list(diffs, "class %s property" % cname, oc["props"],
                     ref_props, fmt_field)
        for mname in compare_keys(diffs, "method %s." % cname,
                                  oc["methods"], rc["methods"]):
            full = "%s.%s" % (cname, mname)
            om, rm = oc["methods"][mname], rc["methods"][mname]
            for k in ("index", "synchronous", "content", "deprecated"):
                if om[k] != rm[k]:
                    diffs.append("method %s %s: ours %s, reference %s"
                                 % (full, k, om[k], rm[k]))
            if om["responses"] != rm["responses"]:
                diffs.append("method %s responses: ours %s, reference %s"
                             % (full, om["responses"], rm["responses"]))
            want_ref, want_ours = CHASSIS_DEVIATIONS.get(
                full, (rm["chassis"], rm["chassis"]))
            if rm["chassis"] != want_ref or om["chassis"] != want_ours:
                diffs.append("method %s chassis: ours %s, reference %s "
                             "(expected ours %s against reference %s)"
                             % (full, om["chassis"], rm["chassis"],
                                want_ours, want_ref))
            compare_list(diffs, "method %s field" % full, om["fields"],
                         rm["fields"], fmt_field)
    return diffs


def prose_in(path):
    """Our file carries structure only: no documentation or rule text."""
    found = []
    for el in ET.parse(path).getroot().iter():
        if el.tag in ("doc", "rule", "assert", "grammar"):
            found.append("ours has a <%s> element" % el.tag)
        if el.get("label") is not None:
            found.append("ours has label=%r on <%s name=%r>"
                         % (el.get("label"), el.tag, el.get("name")))
        if el.text and el.text.strip():
            found.append("ours has text inside <%s name=%r>"
                         % (el.tag, el.get("name")))
    return found


# Broken copies of our XML: (what, text whose first occurrence is replaced,
# replacement, message the generator must print).
GENERATOR_CASES = [
    ("unknown domain",
     '<field name="queue" domain="queue-name"/>',
     '<field name="queue" domain="queue-nmae"/>', "unknown domain"),
    ("unknown type",
     '<field name="reserved-1" type="short" reserved="1"/>',
     '<field name="reserved-1" type="int24" reserved="1"/>', "unknown type"),
    ("unknown domain type",
     '<domain name="delivery-tag" type="longlong"/>',
     '<domain name="delivery-tag" type="u64"/>', "unknown type"),
    ("duplicate method id",
     '<method name="nack" index="120">',
     '<method name="nack" index="110">', "index 110 already used"),
    ("duplicate class id",
     '<class name="confirm" index="85"',
     '<class name="confirm" index="90"', "already used by class"),
    ("duplicate method name",
     '<method name="recover-async" index="100"',
     '<method name="recover" index="100"', "duplicate method"),
    ("missing response",
     '<response name="purge-ok"/>',
     '<response name="purged-ok"/>', "is not a method"),
    ("duplicate reply code",
     '<constant name="not-found" value="404"',
     '<constant name="not-found" value="403"', "reply code 403"),
]


def run_generator(gen, xml, out, mode):
    return subprocess.run([sys.executable, gen, mode, xml, out],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def check_generator(ours_path):
    gen = os.path.join(top_srcdir(), "src", "codec", "amqpgen.py")
    if not os.path.isfile(gen):
        return ["generator %s not found" % gen]
    problems = []
    with open(ours_path, encoding="utf-8") as f:
        text = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        outs = []
        for run in (1, 2):
            for mode in ("--header", "--source"):
                out = os.path.join(tmp, "out%d%s" % (run, mode))
                r = run_generator(gen, ours_path, out, mode)
                if r.returncode != 0:
                    problems.append("generator %s failed on our XML: %s"
                                    % (mode, r.stdout.strip()))
                    return problems
                with open(out, encoding="ascii") as f:
                    outs.append(f.read())
        if outs[:2] != outs[2:]:
            problems.append("generator output differs between two runs")
        for o in outs[:2]:
            if not o.startswith("/* generated by src/codec/amqpgen.py from "
                                "amqp-spec/amqp0-9-1.xml; do not edit */"):
                problems.append("generated file lacks the banner")
        for what, old, new, msg in GENERATOR_CASES:
            if old not in text:
                problems.append("generator case %r: %r is not in our XML"
                                % (what, old))
                continue
            bad = os.path.join(tmp, "bad.xml")
            with open(bad, "w", encoding="utf-8") as f:
                f.write(text.replace(old, new, 1))
            out = os.path.join(tmp, "bad.h")
            r = run_generator(gen, bad, out, "--header")
            if r.returncode == 0 or msg not in r.stdout:
                problems.append("generator case %r: exit %d, output %r "
                                "(wanted failure mentioning %r)"
                                % (what, r.returncode, r.stdout.strip(), msg))
            elif os.path.exists(out):
                problems.append("generator case %r left an output file"
                                % what)
            else:
                print("ok: generator refuses %s: %s"
                      % (what, r.stdout.strip().split(": ", 2)[-1]))
    return problems


def main(argv):
    ours_path = (argv[1] if len(argv) > 1 else
                 os.path.join(top_srcdir(), "amqp-spec", "amqp0-9-1.xml"))
    ref_path = argv[2] if len(argv) > 2 else find_reference()
    gen_problems = check_generator(ours_path)
    for p in gen_problems:
        print("GENERATOR: " + p)
    if gen_problems:
        print("FAIL: %d generator problem(s)" % len(gen_problems))
        return FAIL
    if ref_path is None:
        print("SKIP: reference spec not found (set WARREN_SPEC_REF, or put "
              "%s in $top_srcdir/../shared/amqp-spec/)" % REF_NAME)
        return SKIP
    print("ours:      %s" % ours_path)
    print("reference: %s" % ref_path)
    problems = []
    try:
        ours = Loaded(ours_path, problems, "ours")
        ref = Loaded(ref_path, problems, "reference")
    except (OSError, ET.ParseError) as e:
        print("FAIL: %s" % e)
        return FAIL
    diffs = problems + prose_in(ours_path) + compare(ours, ref)
    for d in diffs:
        print("DIFF: " + d)
    nmethods = sum(len(c["methods"]) for c in ours.classes.values())
    if diffs:
        print("FAIL: %d difference(s)" % len(diffs))
        return FAIL
    print("PASS: %d classes, %d methods, %d constants, %d domains agree"
          % (len(ours.classes), nmethods, len(ours.constants),
             len(ours.domains)))
    return OK


if __name__ == "__main__":
    sys.exit(main(sys.argv))
