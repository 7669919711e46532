/* probe: try one thing a contained process should not be able to do, and say what happened.
 *
 *   probe VERB [ARGS...]
 *
 * Prints one line, "OK [detail]" when the attempt succeeded (exit 0) or
 * "ERR <errno name> <strerror>" when the kernel refused it (exit 1); usage errors exit 2.
 * Static (gcc -static), so it runs in a rootfs with no libc. Built and cached by probe.py;
 * the escape tests copy it into a bundle's rootfs as /bin/probe. Each verb makes the one
 * system call it is named after, with arguments that do no harm if it were allowed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ok(const char *detail)
{
    printf(detail ? "OK %s\n" : "OK\n", detail);
    return 0;
}

static int fail(int err)
{
    const char *name = strerrorname_np(err);
    printf("ERR %s %s\n", name ? name : "E?", strerror(err));
    return 1;
}

/* a syscall's result: >= 0 is success, -1 is failure with errno set */
static int result(long rc)
{
    return rc < 0 ? fail(errno) : ok(NULL);
}

static unsigned long long cap_eff(void)
{
    char line[256];
    unsigned long long caps = ~0ULL;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    if (f)
        fclose(f);
    return caps;
}

/* ---------------------------------------------------------------- the verbs */
/* each takes the arguments after the verb (a[i] is NULL past the last one) */
#define VERB(name) static int name(char **a __attribute__((unused)))

#define TARGET(dflt) (a[0] ? a[0] : dflt)
VERB(v_mount)  { return result(mount("tmpfs", TARGET("/tmp"), "tmpfs", 0, "size=1m")); }
VERB(v_umount) { return result(umount2(TARGET("/proc"), MNT_DETACH)); }
VERB(v_setuid) { return result(setuid(atoi(a[0]))); }
VERB(v_chown)  { return result(chown(a[0], atoi(a[1]), atoi(a[2]))); }
VERB(v_unshare_user)   { return result(unshare(CLONE_NEWUSER)); }

VERB(v_pivot_root)
{
    return result(chdir("/") ? -1 : syscall(SYS_pivot_root, ".", "."));
}

VERB(v_keyctl)
{   /* join a named session keyring (made if it cannot be found): "OK serial=<hex>", as in
     * /proc/keys. runc and kago name each container's "_ses.<id>" */
    char detail[32];
    long serial = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, a[0] ? a[0] : "probe");
    if (serial < 0)
        return fail(errno);
    snprintf(detail, sizeof detail, "serial=%08lx", serial);
    return ok(detail);
}

VERB(v_add_key)
{
    return result(syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
}

VERB(v_keyring)
{   /* describe the session keyring: "keyring;uid;gid;perm;name" */
    char desc[256] = "";
    if (syscall(SYS_keyctl, KEYCTL_DESCRIBE, KEY_SPEC_SESSION_KEYRING, desc, sizeof desc) < 0)
        return fail(errno);
    return ok(desc);
}

VERB(v_ptrace)
{
    pid_t pid = atoi(a[0]);
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0)
        return fail(errno);
    waitpid(pid, NULL, __WALL);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return ok(NULL);
}

VERB(v_kexec_load)
{   /* no segments: with CAP_SYS_BOOT this would only unload a (missing) crash kernel */
    return result(syscall(SYS_kexec_load, 0UL, 0UL, NULL, KEXEC_ARCH_DEFAULT));
}

VERB(v_open_by_handle_at)
{   /* "shocker": decode a handle of / relative to a mount fd, bypassing path lookup */
    struct { struct file_handle fh; unsigned char bytes[MAX_HANDLE_SZ]; } h = {0};
    int mount_id, root = open("/", O_RDONLY | O_DIRECTORY);
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0) < 0) {
        h.fh.handle_type = 1;  /* FILEID_INO32_GEN for inode 2: the permission check comes first */
        h.fh.handle_bytes = 8;
        h.fh.f_handle[0] = 2;
    }
    return result(open_by_handle_at(root, &h.fh, O_RDONLY));
}

VERB(v_bpf)
{
    union bpf_attr attr = {0};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return result(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

VERB(v_perf_event_open)
{   /* a software counter of our own user time: allowed at perf_event_paranoid <= 2 */
    struct perf_event_attr attr = {0};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return result(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

VERB(v_mknod)
{   /* mknod PATH b|c MAJOR MINOR */
    mode_t type = a[1][0] == 'b' ? S_IFBLK : S_IFCHR;
    return result(mknod(a[0], type | 0600, makedev(atoi(a[2]), atoi(a[3]))));
}

VERB(v_open_write) { return result(open(a[0], O_WRONLY)); }
VERB(v_create_file) { return result(open(a[0], O_WRONLY | O_CREAT | O_EXCL, 0644)); }

VERB(v_write_file)
{   /* write-file PATH DATA: no O_CREAT, no O_TRUNC */
    int fd = open(a[0], O_WRONLY);
    if (fd < 0 || write(fd, a[1], strlen(a[1])) < 0)
        return fail(errno);
    return ok(NULL);
}

VERB(v_read_file)
{   /* read-file PATH: "OK bytes=N" (at most 1 MiB) */
    static char buf[1 << 20];
    char detail[32];
    ssize_t n, total = 0;
    int fd = open(a[0], O_RDONLY);
    if (fd < 0)
        return fail(errno);
    while ((n = read(fd, buf, sizeof buf - total)) > 0 && (total += n) < (ssize_t)sizeof buf)
        ;
    if (n < 0)
        return fail(errno);
    snprintf(detail, sizeof detail, "bytes=%zd", total);
    return ok(detail);
}

VERB(v_list_dir)
{   /* list-dir PATH: "OK entries=N", not counting . and .. */
    char detail[32];
    int n = 0;
    struct dirent *e;
    DIR *d = opendir(a[0]);
    if (!d)
        return fail(errno);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    snprintf(detail, sizeof detail, "entries=%d", n);
    return ok(detail);
}

VERB(v_creds)
{
    char detail[96];
    snprintf(detail, sizeof detail, "uid=%d euid=%d capeff=%016llx",
             getuid(), geteuid(), cap_eff());
    return ok(detail);
}

VERB(v_setuid_regain)
{   /* run as a setuid-root copy: did exec make us root, or can we become it? */
    if (geteuid() == 0 || cap_eff() != 0 || setuid(0) == 0)
        return v_creds(NULL);
    return fail(errno ? errno : EPERM);
}

VERB(v_exe_hunt)
{   /* exe-hunt SECONDS: the CVE-2019-5736 race. Keep opening every /proc/PID/exe for writing,
     * hoping to catch a runtime process (exec's) before it execs; OK names what was opened.
     * ERR is the refusal a non-dumpable (runtime) process gave, if one was seen. */
    time_t end = time(NULL) + atoi(a[0]);
    int last = ENOENT, hidden_err = 0, hidden = 0;
    char path[64], target[256], detail[384];
    while (time(NULL) < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid())
                continue;
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            ssize_t n = readlink(path, target, sizeof target - 1);
            int runtime = n < 0 && errno == EACCES;  /* non-dumpable: the link is hidden */
            target[n < 0 ? 0 : n] = 0;
            if (open(path, O_WRONLY) >= 0) {
                snprintf(detail, sizeof detail, "%s -> %s", path, runtime ? "(hidden)" : target);
                return ok(detail);
            }
            last = errno;
            if (runtime && errno != ENOENT) {  /* ENOENT: it exec'd or exited meanwhile */
                hidden++;
                hidden_err = errno;
            }
        }
        if (d)
            closedir(d);
    }
    fprintf(stderr, "probe: %d non-dumpable sightings\n", hidden);
    return fail(hidden ? hidden_err : last);
}

/* sd_notify(3)'s wire format: MESSAGE as one datagram to $NOTIFY_SOCKET ('@': abstract) */
static int v_notify(char **a)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof addr.sun_path)
        return fail(EINVAL);
    strcpy(addr.sun_path, path);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(errno);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
    return result(sendto(fd, a[0], strlen(a[0]), 0, (struct sockaddr *)&addr, len));
}

struct verb {
    const char *name;
    int nargs;  /* required arguments */
    int (*fn)(char **);
    const char *usage;
};

static const struct verb verbs[] = {
    {"mount", 0, v_mount, "[TARGET]"}, {"umount", 0, v_umount, "[TARGET]"},
    {"pivot_root", 0, v_pivot_root, ""}, {"unshare-user", 0, v_unshare_user, ""},
    {"keyctl", 0, v_keyctl, "[NAME]"}, {"add_key", 0, v_add_key, ""},
    {"keyring", 0, v_keyring, ""}, {"ptrace", 1, v_ptrace, "PID"},
    {"kexec_load", 0, v_kexec_load, ""}, {"open_by_handle_at", 0, v_open_by_handle_at, ""},
    {"bpf", 0, v_bpf, ""}, {"perf_event_open", 0, v_perf_event_open, ""},
    {"mknod", 4, v_mknod, "PATH b|c MAJOR MINOR"},
    {"open-write", 1, v_open_write, "PATH"}, {"create-file", 1, v_create_file, "PATH"},
    {"write-file", 2, v_write_file, "PATH DATA"}, {"read-file", 1, v_read_file, "PATH"},
    {"list-dir", 1, v_list_dir, "PATH"}, {"chown", 3, v_chown, "PATH UID GID"},
    {"setuid", 1, v_setuid, "UID"}, {"creds", 0, v_creds, ""},
    {"setuid-regain", 0, v_setuid_regain, ""}, {"exe-hunt", 1, v_exe_hunt, "SECONDS"},
    {"notify", 1, v_notify, "MESSAGE"},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!getenv("PROBE_CONTAINED")) {  /* as host root, "mount" would really mount on /tmp */
        fputs("probe: refusing to run outside a test container (set PROBE_CONTAINED=1)\n",
              stderr);
        return 2;
    }
    for (size_t i = 0; argc > 1 && i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name) && argc - 2 >= verbs[i].nargs)
            return verbs[i].fn(argv + 2);  /* argv[argc] is NULL: so is a[i] past the last */
    fprintf(stderr, "usage: probe VERB [ARGS]; verbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(stderr, "  %s %s\n", verbs[i].name, verbs[i].usage);
    return 2;
}
