"""What every resources planner shares: Write, the value checks (each bad value a SpecError
naming its field), runc's conversions and the files whose presence changes a plan. Pure.
"""

import math

from kago.errors import SpecError

UNIFIED = "unified"
# The v2 device filter's pseudo file name in a plan: an eBPF program, not a file (devices.py).
DEVICE_FILTER = "<eBPF device filter>"
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)
UNLIMITED = -1

# Files whose presence changes what is written; assumed for a plain host when not probed.
OPTIONAL_FILES = ("memory.memsw.limit_in_bytes", "blkio.weight", "blkio.bfq.weight",
                  "io.bfq.weight", "memory.swap.max", "memory.kmem.tcp.limit_in_bytes")
DEFAULT_FILES = frozenset(("memory.memsw.limit_in_bytes", "blkio.weight", "memory.swap.max"))


class Write(tuple):
    """(target, filename, value); ``.field`` names the spec field it comes from."""

    def __new__(cls, target, filename, value, field=""):
        self = super().__new__(cls, (target, filename, value))
        self.field = field
        return self

    target = property(lambda self: self[0])
    filename = property(lambda self: self[1])
    value = property(lambda self: self[2])


# --- conversions (runc's libcontainer/cgroups/utils.go and their inverses) --------------------

def shares_to_weight(shares):
    """cpu.shares -> cpu.weight [1, 10000]: runc's (>= 1.3.2) and crun's (>= 1.23) curve.

    A quadratic in log2(shares) through the ends and the defaults: 2 -> 1, 1024 -> 100,
    262144 -> 10000; shares outside [2, 262144] are clamped. (runc 1.1 and 1.2 used the linear
    1 + (shares - 2) * 9999 // 262142, which gave the default 1024 a weight of 39.)
    """
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    log = math.log2(shares)
    return math.ceil(math.pow(10, (log * log + 125 * log) / 612.0 - 7.0 / 34.0))


def weight_to_shares(weight):
    """cpu.weight [1, 10000] -> cpu.shares [2, 262144]: the inverse of shares_to_weight."""
    if weight <= 1:
        return 2
    if weight >= 10000:
        return 262144
    exponent = math.log10(weight) + 7.0 / 34.0
    log = (-125 + math.sqrt(125 * 125 + 4 * 612 * exponent)) / 2
    return min(262144, max(2, round(2 ** log)))


def blkio_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000] (runc)."""
    return 1 + ((weight - 10) * 9999) // 990


def io_to_blkio_weight(weight):
    """io.weight [1, 10000] -> blkio.weight [10, 1000]."""
    return 10 + ((weight - 1) * 990) // 9999


def swap_to_v2(swap, limit):
    """The spec's swap (memory+swap, v1 memsw) -> memory.swap.max; None means no write.

    runc's ConvertMemorySwapToCgroupV2Value: unlimited memory with swap unset means unlimited
    swap too; with unlimited memory a swap value is taken as it is (there is no limit to take
    away); swap == limit is "0". (A swap without a memory limit is the caller's error.)
    """
    if limit == UNLIMITED and swap == 0:
        return "max"
    if swap in (0, UNLIMITED):
        return None if swap == 0 else "max"
    if limit == UNLIMITED:
        return str(swap)
    return str(swap - limit)


def swap_from_v2(swap_max, limit):
    """memory.swap.max (swap alone) -> v1 memsw (memory+swap); -1 for "max"."""
    if swap_max == "max":
        return UNLIMITED
    return limit + swap_max


def _v1_limit(value):
    return str(value)


def _v2_limit(value):
    return "max" if value == UNLIMITED else str(value)


# --- value checks: every bad value is a SpecError naming its field ----------------------------

def _decimal(text):
    """Only ASCII digits: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(value, field, lo=INT64[0], hi=INT64[1]):
    if type(value) is not int or not lo <= value <= hi:
        raise SpecError(field, f"must be an integer from {lo} to {hi}, not {_show(value)}")
    return value


def _limit(value, field):
    """A byte or count limit: -1 unlimited, 0 unset, else positive (int64)."""
    return _int(value, field, UNLIMITED, INT64[1])


def _bool(value, field):
    if type(value) is not bool:
        raise SpecError(field, f"must be true or false, not {_show(value)}")
    return value


def _str(value, field):
    if type(value) is not str or "\0" in value or "\n" in value:
        raise SpecError(field, f"must be a one-line string, not {_show(value)}")
    return value


def _dict(value, field):
    if value is None:
        return {}
    if type(value) is not dict:
        raise SpecError(field, f"must be an object, not {_show(value)}")
    return value


def _list(value, field):
    if value is None:
        return []
    if type(value) is not list:
        raise SpecError(field, f"must be an array, not {_show(value)}")
    return value


def _cpulist(value, field):
    """cpuset.cpus/mems: the kernel parses "0-3,5"; refuse anything else before it gets there.

    Whether the CPUs exist and are online is the kernel's to say (ERANGE/EINVAL on write).
    """
    value = _str(value, field).strip()
    if value.strip("0123456789,-"):
        raise SpecError(field, f"must be a list like 0-3,5, not {_show(value)}")
    return value or None
