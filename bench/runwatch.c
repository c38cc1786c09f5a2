/*
 * runwatch: run a VM monitor (khyve or QEMU) and time what it prints.
 *
 *   runwatch [OPTIONS] -- COMMAND [ARG...]
 *
 *   -m TEXT   marker: the moment TEXT first appears in COMMAND's output
 *             (stdout and stderr, merged) is the figure measured
 *   -e TEXT   an earlier event: the moment TEXT first appears is reported
 *             as event_ms (-1 when it never did); bench/preload/
 *             first-kvm-run.so prints one when the first KVM_RUN is issued
 *   -t SECS   give up after SECS (default 600): no marker is a failure
 *   -l FILE   copy COMMAND's output to FILE
 *   -s BYTES  at the marker (after -w), read /proc/PID/smaps: the guest's
 *             RAM is the one anonymous mapping of exactly BYTES; report the
 *             process's RSS with and without it
 *   -w SECS   wait SECS after the marker before measuring/acting (default 0)
 *   -i TEXT   then write TEXT to COMMAND's stdin (\n escapes allowed)
 *   -k        then wait for COMMAND to exit by itself (default: SIGTERM it,
 *             SIGKILL after 10 s); without -m, wait for the exit
 *
 * COMMAND's stdin is a pipe kept open until the end, so a guest shell on
 * the console idles instead of seeing EOF. The clock (CLOCK_MONOTONIC)
 * starts immediately before fork(): "process start" includes exec and the
 * dynamic loader, as a user would see it.
 *
 * Prints one line of key=value pairs on stdout:
 *   marker_ms  exit_ms  status  cpu_ms (user+sys of COMMAND and its threads)
 *   event_ms (with -e)
 *   rss_kib guest_kib overhead_kib anon_overhead_kib   (with -s)
 *   guest_thp_kib (guest RAM in transparent huge pages) and
 *   guest_addr_2m_offset (its host address modulo 2 MiB: KVM maps guest
 *   RAM with 2 MiB pages only where guest and host addresses agree in it)
 * Exit status 0 when the marker was seen (and -s measured), 1 otherwise,
 * after the tail of COMMAND's output on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TAIL_SIZE 4096

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			*o++ = '\n';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

struct smaps_result {
	unsigned long rss_kib, guest_kib, anon_kib, guest_thp_kib;
	unsigned long long guest_addr;
	int guest_mappings;
};

/* Sum Rss over all mappings; the guest mapping is anonymous and of exactly guest_bytes. */
static int read_smaps(pid_t pid, unsigned long long guest_bytes, struct smaps_result *r)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	memset(r, 0, sizeof(*r));
	bool in_guest = false, anon = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		char perms[8];
		unsigned long long off;
		char dev[16];
		unsigned long ino;
		int name_at = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %15s %lu %n", &lo, &hi, perms, &off, dev, &ino,
			   &name_at) == 6) {
			const char *name = line + name_at;
			/* Anonymous: no inode; a [heap] or [stack] name is not guest RAM. */
			anon = ino == 0 && (name[0] == '\n' || name[0] == 0 ||
					    strncmp(name, "[anon", 5) == 0 ||
					    strncmp(name, "[heap]", 6) == 0 ||
					    strncmp(name, "[stack", 6) == 0);
			bool unnamed = name[0] == '\n' || name[0] == 0 || strncmp(name, "[anon", 5) == 0;
			in_guest = ino == 0 && unnamed && hi - lo == guest_bytes;
			if (in_guest) {
				r->guest_mappings++;
				r->guest_addr = lo;
			}
			continue;
		}
		unsigned long kib;
		if (sscanf(line, "Rss: %lu kB", &kib) == 1) {
			r->rss_kib += kib;
			if (anon)
				r->anon_kib += kib;
			if (in_guest)
				r->guest_kib += kib;
		}
		if (in_guest && sscanf(line, "AnonHugePages: %lu kB", &kib) == 1)
			r->guest_thp_kib += kib;
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	const char *marker = NULL, *event = NULL, *logpath = NULL;
	char *input = NULL;
	double timeout_s = 600, settle_s = 0;
	unsigned long long guest_bytes = 0;
	bool keep = false;
	int opt;
	while ((opt = getopt(argc, argv, "+m:e:t:l:s:w:i:k")) != -1) {
		switch (opt) {
		case 'm': marker = optarg; break;
		case 'e': event = optarg; break;
		case 't': timeout_s = atof(optarg); break;
		case 'l': logpath = optarg; break;
		case 's': guest_bytes = strtoull(optarg, NULL, 0); break;
		case 'w': settle_s = atof(optarg); break;
		case 'i': input = optarg; unescape(input); break;
		case 'k': keep = true; break;
		default:
			fprintf(stderr, "usage: runwatch [-m TEXT] [-e TEXT] [-t SECS] [-l FILE] [-s BYTES] "
					"[-w SECS] [-i TEXT] [-k] -- COMMAND [ARG...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "runwatch: no command\n");
		return 2;
	}
	if (!marker)
		keep = true;
	FILE *log = NULL;
	if (logpath && !(log = fopen(logpath, "w"))) {
		fprintf(stderr, "runwatch: %s: %s\n", logpath, strerror(errno));
		return 2;
	}
	int out[2], in[2];
	if (pipe2(out, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) {
		perror("runwatch: pipe");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		perror("runwatch: fork");
		return 2;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "runwatch: exec %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);

	/* Output: a sliding window for the marker (which may straddle reads) and a tail. */
	size_t mlen = marker ? strlen(marker) : 0;
	char *win = calloc(1, TAIL_SIZE + 65536 + 1);
	size_t wlen = 0;
	double marker_ms = -1, event_ms = -1, exit_ms = -1, deadline = t0 + timeout_s * 1e3;
	double act_at = -1;   /* when to measure / send input / stop */
	bool marker_line_done = false, acted = false, out_open = true, measured_ok = guest_bytes == 0, term_sent = false;
	double kill_at = -1, drain_until = 0;
	struct smaps_result sm = { 0 };
	int status = -1;
	struct rusage ru = { 0 };

	for (;;) {
		double t = now_ms();
		if (marker_ms >= 0 && marker_line_done && !acted && t >= act_at) {
			acted = true;
			if (guest_bytes) {
				if (read_smaps(pid, guest_bytes, &sm) == 0 && sm.guest_mappings == 1)
					measured_ok = true;
				else
					fprintf(stderr, "runwatch: found %d anonymous mappings of %llu bytes "
							"in /proc/%d/smaps (want exactly 1)\n",
						sm.guest_mappings, guest_bytes, (int)pid);
			}
			if (input && write(in[1], input, strlen(input)) < 0)
				fprintf(stderr, "runwatch: writing to the child: %s\n", strerror(errno));
			if (!keep) {
				kill(pid, SIGTERM);
				term_sent = true;
				kill_at = t + 10e3;
			}
		}
		if (!term_sent && t >= deadline) {
			fprintf(stderr, "runwatch: timeout after %.0f s\n", timeout_s);
			kill(pid, SIGTERM);
			term_sent = true;
			kill_at = t + 5e3;
		}
		if (kill_at >= 0 && t >= kill_at) {
			kill(pid, SIGKILL);
			kill_at = -1;
		}
		if (status < 0) {
			int st;
			if (wait4(pid, &st, WNOHANG, &ru) == pid) {
				exit_ms = now_ms() - t0;
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				/* Drain what it wrote; a grandchild keeping the pipe open
				 * must not keep us here. */
				drain_until = now_ms() + 1000;
			}
		}
		if (status >= 0 && (!out_open || t >= drain_until))
			break;
		if (!out_open) {
			usleep(2000);
			continue;
		}
		double wait_until = term_sent ? t + 50 : deadline;
		if (status >= 0 && drain_until < wait_until)
			wait_until = drain_until;
		if (status < 0 && wait_until > t + 50)
			wait_until = t + 50;   /* look for the child's exit now and then */
		if (marker_ms >= 0 && marker_line_done && !acted && act_at < wait_until)
			wait_until = act_at;
		if (kill_at >= 0 && kill_at < wait_until)
			wait_until = kill_at;
		int ms = (int)(wait_until - t) + 1;
		if (ms < 0)
			ms = 0;
		struct pollfd p = { out[0], POLLIN, 0 };
		int r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		char buf[65536];
		ssize_t n = read(out[0], buf, sizeof(buf));
		double tr = now_ms();
		if (n <= 0) {
			out_open = false;
			continue;
		}
		if (log)
			fwrite(buf, 1, (size_t)n, log);
		memcpy(win + wlen, buf, (size_t)n);
		wlen += (size_t)n;
		win[wlen] = 0;
		if (event && event_ms < 0 && memmem(win, wlen, event, strlen(event)))
			event_ms = tr - t0;
		if (marker && marker_ms < 0) {
			char *at = memmem(win, wlen, marker, mlen);
			if (at) {
				marker_ms = tr - t0;
				marker_line_done = memchr(at, '\n', wlen - (size_t)(at - win)) != NULL;
				act_at = tr + settle_s * 1e3;
			}
		} else if (marker && !marker_line_done && memchr(buf, '\n', (size_t)n)) {
			/* Act only once the marker's line is complete (the log needs it). */
			marker_line_done = true;
			if (act_at < tr)
				act_at = tr;
		}
		if (wlen > TAIL_SIZE) {
			memmove(win, win + wlen - TAIL_SIZE, TAIL_SIZE);
			wlen = TAIL_SIZE;
		}
	}
	close(in[1]);
	if (log)
		fclose(log);
	double cpu_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
			ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
	printf("marker_ms=%.1f exit_ms=%.1f status=%d cpu_ms=%.0f", marker_ms, exit_ms, status,
	       cpu_ms);
	if (event)
		printf(" event_ms=%.1f", event_ms);
	if (guest_bytes)
		printf(" rss_kib=%lu guest_kib=%lu overhead_kib=%lu anon_overhead_kib=%lu"
		       " guest_thp_kib=%lu guest_addr_2m_offset=0x%llx",
		       sm.rss_kib, sm.guest_kib, sm.rss_kib - sm.guest_kib,
		       sm.anon_kib - sm.guest_kib, sm.guest_thp_kib,
		       sm.guest_addr & ((2ULL << 20) - 1));
	printf("\n");
	bool ok = (!marker || marker_ms >= 0) && measured_ok;
	if (!ok) {
		if (marker && marker_ms < 0)
			fprintf(stderr, "runwatch: '%s' never appeared (exit status %d)\n", marker,
				status);
		fprintf(stderr, "--- last output of %s ---\n%s\n---\n", argv[optind], win);
	}
	return ok ? 0 : 1;
}
