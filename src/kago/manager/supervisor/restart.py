"""The restart policy, decided: given a container's RestartPolicy (its definition's: no,
always, unless-stopped, on-failure with at most N retries), how it ended, how often it was
restarted and whether the user stopped it, whether it is started again and after what
delay. Pure.

The delay is docker's: 100 ms for the first restart, doubled each time up to 10 s, and back
to 100 ms once a run lasted 10 s (``reset``). A user's stop (``stop``, ``kill``, ``rm -f``)
always wins; ``on-failure`` restarts an exit code other than 0 (an unknown one included),
at most N times when N is given.
"""

RESTART_DELAY_MIN = 0.1     # docker: 100 ms, doubled each time, reset after 10 s of running
RESTART_DELAY_MAX = 10.0
RESTART_RESET_AFTER = 10.0


class Decision(tuple):
    """(restart, delay, next_delay), by name too (a namedtuple's, without collections: the
    supervisor imports nothing that needs it)."""

    __slots__ = ()

    def __new__(cls, restart, delay, next_delay):
        return tuple.__new__(cls, (restart, delay, next_delay))

    restart = property(lambda self: self[0])
    delay = property(lambda self: self[1])
    next_delay = property(lambda self: self[2])


def decide(policy, exit_code, restart_count, stopped_by_user, delay=None):
    """Decision(restart, delay before it, the delay to keep for the next one). ``delay``:
    the one kept from the previous restart (None: the first, or reset)."""
    if not should_restart(policy, exit_code, restart_count, stopped_by_user):
        return Decision(False, None, delay)
    delay = RESTART_DELAY_MIN if delay is None else delay
    return Decision(True, delay, backoff(delay))


def should_restart(policy, exit_code, restart_count, stopped_by_user):
    if stopped_by_user:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        return exit_code != 0 and (policy.max_retries == 0
                                   or restart_count < policy.max_retries)
    return False


def backoff(delay):
    """The delay after ``delay``: doubled, at most RESTART_DELAY_MAX."""
    return min(delay * 2, RESTART_DELAY_MAX)


def reset(ran):
    """Whether a run of ``ran`` seconds starts the back-off again from its minimum."""
    return ran >= RESTART_RESET_AFTER
