#!/usr/bin/env python3
"""Traffic of the dashboard screenshot run: a mix of users, search (with
upstream delays), orders (with some 503s), anonymous calls (401) and a
trial consumer that exceeds its 60/minute (429). Usage:
traffic.py GATEWAY_URL PRO_KEY TRIAL_KEY SECONDS"""
import random, sys, threading, time, urllib.error, urllib.request

base, pro, trial, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.time() + seconds

def call(path, key=None):
    req = urllib.request.Request(base + path)
    if key:
        req.add_header("x-api-key", key)
    try:
        urllib.request.urlopen(req, timeout=5).read()
    except urllib.error.HTTPError:
        pass
    except OSError:
        pass

def worker(seed):
    rnd = random.Random(seed)
    while time.time() < end:
        t = time.time()
        r = rnd.random()
        # latency of search grows during the run: "since when"
        slow = 5 + 60 * max(0.0, (t - (end - seconds)) / seconds - 0.5) * 2
        if r < 0.35:
            call(f"/api/users/{rnd.randint(1, 999)}", pro)
        elif r < 0.60:
            call(f"/api/search/delay/{rnd.expovariate(1 / slow):.1f}ms", pro)
        elif r < 0.78:
            call("/api/orders/status/503" if rnd.random() < 0.08 else f"/api/orders/delay/{rnd.uniform(1, 12):.1f}ms", pro)
        elif r < 0.86:
            call("/api/users/anonymous")  # 401
        elif r < 0.95:
            call("/api/search/delay/2ms", trial)  # 429 once over 60/minute
        else:
            call("/healthz")
        time.sleep(max(0.0, 0.08 - (time.time() - t)))

threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
