"""Facts and figures of the host Sentinel runs on, all read here: CPU, memory,
load, file systems, network addresses, the OS. psutil where it reads what is
needed; /proc directly where the agent's figures come from there.

Readings that may be refused under a service's hardening (network
interfaces, a mount point) give an empty answer, never an error.
"""

import functools
import logging
import os
import platform
import socket

import psutil

logger = logging.getLogger(__name__)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
UNKNOWN_DISTRIBUTION = "Distrib. info N/A"  # the agent's words when it cannot tell

# Devices and top-level directories the agent leaves out of the file systems.
SKIPPED_DEVICES = ("devtmpfs", "overlay", "shm", "tmpfs")
SKIPPED_TOP_DIRECTORIES = ("dev", "proc", "run", "sys")
# Not local storage: statvfs on a dead network mount could hang.
REMOTE_FSTYPES = frozenset(
    ("nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "afs", "ceph", "glusterfs", "9p", "lustre")
)


# -- what does not change while the process runs ---------------------------------------


@functools.cache
def static_facts():
    return {
        "memory_size": psutil.virtual_memory().total,
        "cpu": psutil.cpu_count() or 1,
        "os": platform.system(),
        "os_version": platform.release(),
        "cpu_arch": platform.machine(),
    }


@functools.cache
def cpuinfo(path="/proc/cpuinfo"):
    """One dict per logical CPU of /proc/cpuinfo, keys in snake case
    ("model_name", "cpu_mhz", ...)."""
    cpus = []
    try:
        with open(path) as handle:
            lines = handle.readlines()
    except OSError:
        return []
    for line in lines:
        key, sep, value = line.partition(":")
        key = key.strip().replace(" ", "_").lower()
        if not sep:
            continue
        if key == "processor":
            cpus.append({})
        if cpus:
            cpus[-1][key] = value.strip()
    return cpus


def cpu_models():
    """{model name: number of logical CPUs of that model}."""
    models = {}
    for cpu in cpuinfo():
        if "model_name" in cpu:
            models[cpu["model_name"]] = models.get(cpu["model_name"], 0) + 1
    return models or {platform.processor() or platform.machine(): static_facts()["cpu"]}


@functools.cache
def distribution():
    """The distribution's name from os-release."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or UNKNOWN_DISTRIBUTION
    except OSError:
        return UNKNOWN_DISTRIBUTION


@functools.cache
def os_flavor():
    """ "Debian 12.8", or the first line of /etc/redhat-release, or "Unknown"."""
    for path, prefix in (("/etc/redhat-release", ""), ("/etc/debian_version", "Debian ")):
        try:
            with open(path) as handle:
                return prefix + handle.readline().strip()
        except OSError:
            continue
    return "Unknown"


# -- figures read now --------------------------------------------------------------------


def cpu_times():
    """Seconds of CPU time since boot, all CPUs together, in the agent's five groups."""
    times = psutil.cpu_times()
    return {
        "user": times.user + times.nice,
        "system": times.system + times.irq + times.softirq,
        "idle": times.idle,
        "iowait": times.iowait,
        "steal": times.steal,
    }


def load_average():
    """The 1-minute load average."""
    return psutil.getloadavg()[0]


def memory_usage():
    """Total memory in kB, and the share free, cached and used by processes, in percent."""
    vm = psutil.virtual_memory()
    used = vm.total - vm.free - vm.cached
    return {
        "total": vm.total // 1024,
        "free": round(vm.free * 100 / vm.total, 1),
        "active": round(used * 100 / vm.total, 1),
        "cached": round(vm.cached * 100 / vm.total, 1),
    }


def proc_stat():
    """The lines of /proc/stat as {first word: [the other words]}."""
    with open("/proc/stat") as handle:
        return {words[0]: words[1:] for words in map(str.split, handle) if words}


def meminfo():
    """/proc/meminfo in bytes: {field: bytes}."""
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            words = rest.split()
            if words:
                factor = 1024 if len(words) > 1 and words[1] == "kB" else 1
                values[name] = int(words[0]) * factor
    return values


def loadavg():
    """The words of /proc/loadavg: load1, load5, load15, running/total, last pid."""
    with open("/proc/loadavg") as handle:
        return handle.read().split()


def file_systems():
    """Local file systems with their size and use in bytes, as `df --local`
    lists them, without the pseudo and virtual ones the agent leaves out."""
    found = {}
    for part in psutil.disk_partitions(all=True):
        device, mount = part.device, part.mountpoint
        top = mount.split("/")[1] if mount.count("/") else ""
        if (
            part.fstype in REMOTE_FSTYPES
            or part.fstype.startswith("fuse.sshfs")
            or device in ("rootfs", *SKIPPED_DEVICES)
            or device.startswith("/dev/loop")
            or top in SKIPPED_TOP_DIRECTORIES
        ):
            continue
        try:
            usage = os.statvfs(mount)
        except OSError:
            continue
        if usage.f_blocks == 0:  # a pseudo file system
            continue
        # The last mount on a path hides the earlier ones.
        found[mount] = {
            "mount_point": mount,
            "device": device,
            "total": usage.f_blocks * usage.f_frsize,
            "used": (usage.f_blocks - usage.f_bfree) * usage.f_frsize,
        }
    return list(found.values())


def mount_point(path):
    """The mount point holding `path` (None when there is no path)."""
    if not path:
        return None
    path = os.path.abspath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def ip_addresses():
    """The host's IPv4 and global IPv6 addresses; [] when the interfaces
    cannot be listed (netlink refused by a sandbox)."""
    try:
        interfaces = psutil.net_if_addrs()
    except OSError as exc:
        logger.debug("event=ip_addresses_unreadable error=%s", exc)
        return []
    found = []
    for addresses in interfaces.values():
        for address in addresses:
            if address.family == socket.AF_INET:
                found.append(address.address)
            elif address.family == socket.AF_INET6 and not address.address.startswith(
                ("fe80", "::1")
            ):
                found.append(address.address.split("%")[0])
    return found
