#!/usr/bin/env python3
"""Trim a captured trace by deleting whole lines only (never edits a line).

Keeps: the leading '#' header block (if any; or the lines matching --header-re,
e.g. trace-cmd's "cpus=2" preamble) in full, plus the union of
  --first N         first N non-header lines
  --last N          last N lines
  --around RE       windows of --before/--after lines around the first
                    --count matches of RE (may be given several times)
  --skip N          ignore the first N body lines for --first (to skip the
                    start-up noise)
The kept lines are written in their original order. Stack-trace frame lines
(" => ...") are kept or dropped together with the line that owns them.
"""
import argparse, re, sys

ap = argparse.ArgumentParser()
ap.add_argument('src'); ap.add_argument('dst')
ap.add_argument('--first', type=int, default=0)
ap.add_argument('--skip', type=int, default=0)
ap.add_argument('--last', type=int, default=0)
ap.add_argument('--around', action='append', default=[])
ap.add_argument('--before', type=int, default=3)
ap.add_argument('--after', type=int, default=3)
ap.add_argument('--count', type=int, default=1)
ap.add_argument('--max-bytes', type=int, default=12 * 1024)
ap.add_argument('--header-re', default=None,
                help='regex for leading preamble lines (default: lines starting with "#")')
a = ap.parse_args()

with open(a.src, 'rb') as f:
    data = f.read()
lines = data.split(b'\n')
trailing_nl = lines and lines[-1] == b''
if trailing_nl:
    lines.pop()
lines = [l + b'\n' for l in lines]
if lines and not trailing_nl:
    lines[-1] = lines[-1][:-1]      # keep a missing final newline missing

def is_header(l):
    if a.header_re:
        return re.match(a.header_re.encode(), l) is not None
    return l.startswith(b'#') and not l.startswith(b'#####')
h = 0
while h < len(lines) and is_header(lines[h]):
    h += 1
body = list(range(h, len(lines)))
keep = set(range(h))
keep.update(body[a.skip:a.skip + a.first])
if a.last:
    keep.update(body[-a.last:])
for pat in a.around:
    rx = re.compile(pat.encode())
    n = 0
    for i in body:
        if rx.search(lines[i]):
            keep.update(j for j in range(i - a.before, i + a.after + 1) if h <= j < len(lines))
            n += 1
            if n >= a.count:
                break
    if n == 0:
        print(f'warning: {a.src}: no match for {pat!r}', file=sys.stderr)
# never split a multi-line record: stack-trace frame lines (" => ...") belong
# to the preceding "<stack trace>"/"<user stack trace>" line; keep whole groups.
owner = {}
cur = None
for i in body:
    if lines[i].startswith(b' => ') and cur is not None:
        owner[i] = cur
    else:
        cur = i
        owner[i] = i
groups = {}
for i in body:
    groups.setdefault(owner[i], []).append(i)
for i in list(keep):
    if i in owner:
        keep.update(groups[owner[i]])
out = b''.join(lines[i] for i in sorted(keep))
with open(a.dst, 'wb') as f:
    f.write(out)
print(f'{a.dst}: kept {len(keep)}/{len(lines)} lines, {len(out)} bytes')
if len(out) > a.max_bytes:
    print(f'warning: {a.dst} is larger than {a.max_bytes} bytes', file=sys.stderr)
