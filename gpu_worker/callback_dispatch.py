"""A few threads shared fairly by every tenant's callback deliveries.

Each delivery is a series of attempts; between attempts it waits in a schedule, not on a thread.
Threads take due attempts round-robin across tenants (projects, or the receiving host when
authentication is off), and one tenant has at most `per_tenant` attempts in flight: a tenant
whose receivers time out or keep failing slows down only its own deliveries.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.logging import get_logger

log = get_logger(__name__)

Step = Callable[[], float | None]
"""One attempt; returns the seconds to wait before the next one, or None when the delivery is over."""


@dataclass(order=True)
class _Scheduled:
    due: float
    order: int
    tenant: str = field(compare=False)
    step: Step = field(compare=False)


class FairDispatcher:
    def __init__(
        self,
        threads: int,
        *,
        per_tenant: int = 1,
        hurry: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_tenant = per_tenant
        self.hurry = hurry or threading.Event()  # set: scheduled retries are due at once (shutdown)
        self.clock = clock
        self._ready: OrderedDict[str, deque[Step]] = OrderedDict()  # tenants in round-robin order
        self._scheduled: list[_Scheduled] = []
        self._in_flight: dict[str, int] = {}
        self._order = itertools.count()
        self._lock = threading.Condition()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"callback-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, tenant: str, step: Step) -> None:
        with self._lock:
            self._ready.setdefault(tenant, deque()).append(step)
            self._lock.notify()

    def pending(self) -> int:
        with self._lock:
            return sum(map(len, self._ready.values())) + len(self._scheduled) + sum(self._in_flight.values())

    def shutdown(self, wait: bool = True) -> None:
        """Take no new deliveries; with `wait`, return once every delivery begun has ended."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    # --- the threads ----------------------------------------------------------------------------
    def _promote_due(self) -> None:
        now = self.clock()
        while self._scheduled and (self._scheduled[0].due <= now or self.hurry.is_set()):
            item = heapq.heappop(self._scheduled)
            self._ready.setdefault(item.tenant, deque()).append(item.step)

    def _take(self) -> tuple[str, Step] | None:
        for tenant, steps in self._ready.items():
            if steps and self._in_flight.get(tenant, 0) < self.per_tenant:
                step = steps.popleft()
                self._ready.move_to_end(tenant)  # the next turn goes to another tenant
                if not steps:
                    del self._ready[tenant]
                self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
                return tenant, step
        return None

    def _next(self) -> tuple[str, Step] | None:
        with self._lock:
            while True:
                self._promote_due()
                taken = self._take()
                if taken is not None:
                    return taken
                idle = not self._ready and not self._scheduled and not any(self._in_flight.values())
                if self._closing and idle:
                    self._lock.notify_all()
                    return None
                timeout = self._scheduled[0].due - self.clock() if self._scheduled else None
                self._lock.wait(timeout=0.5 if timeout is None else max(0.0, min(timeout, 0.5)))

    def _run(self) -> None:
        while (taken := self._next()) is not None:
            tenant, step = taken
            try:
                delay = step()
            except Exception:  # a delivery's bug must not kill the thread
                log.exception("callback_step_crashed", tenant=tenant)
                delay = None
            with self._lock:
                self._in_flight[tenant] -= 1
                if delay is not None:
                    heapq.heappush(
                        self._scheduled, _Scheduled(self.clock() + delay, next(self._order), tenant, step)
                    )
                self._lock.notify_all()
