"""How fast the sandbox answers, so that it is never what a benchmark of d7sms measures.

    .venv/bin/python bench/sandbox_bench.py                    # POST /secure/send, keep-alive
    .venv/bin/python bench/sandbox_bench.py --batch 100000     # also: batch callbacks + DLRs

The send benchmark runs the sandbox in this process and the clients in other processes (each
with a few threads holding one keep-alive ``http.client`` connection), so that neither the
client's CPU nor a shared interpreter lock hides the server's own rate. The batch benchmark
sends one batch with a callback and level-3 DLRs to a receiver in another process and checks
that every callback and report arrived exactly once.
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d7sms.sandbox import Sandbox, SandboxUser  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"bench:bench").decode()
HEADERS = {"Authorization": AUTH, "Content-Type": "application/json", "Accept": "application/json"}


def _client_thread(port, count, start, results):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"to": "491511234560", "from": "Bench", "content": "Benchmark message"})
    for _ in range(20):  # warm the connection before the clock starts
        conn.request("POST", "/secure/send", body, HEADERS)
        conn.getresponse().read()
    start.wait()
    errors, latencies = 0, []
    t0 = time.perf_counter()
    began = time.time()
    for _ in range(count):
        t = time.perf_counter()
        conn.request("POST", "/secure/send", body, HEADERS)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t)
        errors += response.status != 200
    results.append((began, began + time.perf_counter() - t0, count, errors, latencies))


def _client_process(port, threads, per_thread, start, queue):
    results = []
    workers = [threading.Thread(target=_client_thread, args=(port, per_thread, start, results))
               for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(results)


def bench_send(port, processes, threads, total):
    """Requests/s of POST /secure/send over keep-alive from processes x threads clients."""
    ctx = multiprocessing.get_context("spawn")
    start, queue = ctx.Event(), ctx.Queue()
    per_thread = max(1, total // (processes * threads))
    procs = [ctx.Process(target=_client_process, args=(port, threads, per_thread, start, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every client connect and warm up
    start.set()
    results = [r for _ in procs for r in queue.get()]
    for p in procs:
        p.join()
    began = min(r[0] for r in results)
    ended = max(r[1] for r in results)
    done = sum(r[2] for r in results)
    errors = sum(r[3] for r in results)
    latencies = sorted(lat for r in results for lat in r[4])
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    return done / (ended - began), done, errors, p50, p99


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"ACK/Jasmin"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def _receiver_process(port_queue):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def bench_batch(sandbox, count):
    """Seconds to accept a batch of ``count`` and throw its callbacks and level-3 DLRs.

    Destinations end in 0 (delivered), so every message earns one callback and two reports.
    """
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    receiver = ctx.Process(target=_receiver_process, args=(port_queue,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{port_queue.get()}"
    batch = {
        "globals": {"from": "Bench", "dlr": "yes", "dlr-url": url + "/dlr", "dlr-level": 3, "dlr-method": "POST"},
        "messages": [{"to": [f"4915{n:07d}0" for n in range(count)], "content": "Batch benchmark"}],
        "batch_config": {"callback_url": url + "/cb", "errback_url": url + "/eb"},
    }
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/secure/sendbatch", json.dumps(batch), HEADERS)
    answer = json.loads(conn.getresponse().read())
    accepted_in = time.perf_counter() - t0
    idle = sandbox.wait_idle(timeout=1800)
    elapsed = time.perf_counter() - t0
    receiver.terminate()
    stats = sandbox.stats()
    return answer, accepted_in, elapsed, idle, stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per client process (default 4)")
    parser.add_argument("--requests", type=int, default=20000, help="total send requests (default 20000)")
    parser.add_argument("--batch", type=int, default=0, help="also run a batch of this many messages")
    args = parser.parse_args()

    sandbox = Sandbox(users=[SandboxUser("bench", "bench", Decimal("1e12"))], dlr_delay=0.01,
                      dlr_retry_delay=0.5).start()
    try:
        rate, done, errors, p50, p99 = bench_send(sandbox.port, args.processes, args.threads, args.requests)
        print(f"POST /secure/send: {rate:,.0f} requests/s ({done} requests, {errors} errors, "
              f"{args.processes} processes x {args.threads} keep-alive connections, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms)")
        if args.batch:
            sandbox.reset()
            answer, accepted_in, elapsed, idle, stats = bench_batch(sandbox, args.batch)
            d = stats["deliveries"]
            calls = d["callback"]["attempts"] + d["dlr"]["attempts"]
            print(f"POST /secure/sendbatch of {answer['data']['messageCount']}: answered in {accepted_in:.2f} s; "
                  f"all sent, called back and reported in {elapsed:.1f} s ({calls / elapsed:,.0f} calls/s); "
                  f"idle={idle}")
            print(f"  accepted {stats['accepted']}, callbacks {d['callback']['acked']}/{d['callback']['attempts']} "
                  f"answered, DLRs acked {d['dlr']['acked']}/{d['dlr']['attempts']} attempts, "
                  f"errbacks {d['errback']['attempts']}")
            ok = (stats["accepted"] == args.batch and d["callback"]["acked"] == args.batch
                  and d["dlr"]["acked"] == 2 * args.batch)
            print("  no callback or report lost" if ok else "  LOST OR FAILED CALLS")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
