"""A load generator in Python, for machines without ``wrk``: processes of threads POSTing forms.

Each thread takes every n-th line of the request list, like the wrk script, and records the
latency and answer of each call. Slower than wrk per request, so use enough processes.
"""

import http.client
import multiprocessing
import threading
import time
from collections import Counter


def _thread(port, lines, start, step, deadline, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    latencies, not_acked, non2xx, errors, i = [], 0, 0, 0, start
    while time.monotonic() < deadline:
        path, body = lines[i % len(lines)]
        i += step
        began = time.perf_counter()
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        latencies.append(time.perf_counter() - began)
        non2xx += not 200 <= response.status < 300
        not_acked += response.status != 200 or payload != b"ACK/Jasmin"
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
    out.append((latencies, non2xx, not_acked, errors))


def _process(port, lines, first, step, threads, seconds, queue):
    out, deadline = [], time.monotonic() + seconds
    workers = [
        threading.Thread(target=_thread, args=(port, lines, first + t, step, deadline, out)) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(out)


def run(port, lines, seconds, connections, processes=4):
    """Load ``127.0.0.1:port`` with ``lines`` [(path, body)] for ``seconds``; return figures."""
    per_process = max(1, connections // processes)
    step = per_process * processes
    queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_process, args=(port, lines, p * per_process, step, per_process, seconds, queue))
        for p in range(processes)
    ]
    began = time.monotonic()
    for p in procs:
        p.start()
    results = [item for _ in procs for item in queue.get()]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - began
    latencies = sorted(lat for lats, *_ in results for lat in lats)

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6 if latencies else 0

    histogram = Counter(int(lat * 1e6) for lat in latencies)
    return {
        "histogram": sorted(histogram.items()),
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "non2xx": sum(r[1] for r in results),
        "not_acked": sum(r[2] for r in results),
        "socket_errors": sum(r[3] for r in results),
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "mean_us": sum(latencies) / len(latencies) * 1e6 if latencies else 0,
    }
