/*
 * warrend: the Warren AMQP 0-9-1 broker daemon.  Settings come from the
 * defaults, then the configuration file, then the command line; then the
 * data directory is checked and locked through the pid file, the admin
 * socket and the listeners are bound, privileges are dropped to [security]
 * user if set.  Unless --foreground, the process detaches as soon as the
 * pid file is locked (before any thread or loop exists, see below) and the
 * starting process exits only when the daemon reports ready or fails, so
 * a service manager sees a failure as a non-zero exit of the start
 * command.
 *
 * Invariant: once the loop runs, the process is either the configured user
 * (with setuid(0) failing) or whoever started it when no user is set.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/metrics.h"
#include "broker/broker.h"
#include "net/listener.h"
#include "util/config.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: warrend [options]\n"
	        "  -f, --foreground          stay in the foreground instead of detaching\n"
	        "  -l, --listen HOST:PORT    AMQP listener (repeatable; default 127.0.0.1:5672)\n"
	        "  -d, --data-dir DIR        data directory (default ./var)\n"
	        "  -c, --config FILE         configuration file\n"
	        "      --check-config        check the configuration, print the effective\n"
	        "                            settings and exit\n"
	        "      --log-level LEVEL     error, warning, info or debug (default info)\n"
	        "      --pid-file PATH       pid file, locked while running (default\n"
	        "                            warrend.pid in the data directory)\n"
	        "      --admin-socket PATH   socket for warrenctl (default warrend.sock in\n"
	        "                            the data directory)\n"
	        "      --tls-listen HOST:PORT\n"
	        "                            AMQP-over-TLS listener (repeatable; none by\n"
	        "                            default; port 5671 by convention)\n"
	        "      --tls-cert FILE       server certificate chain (PEM)\n"
	        "      --tls-key FILE        server private key (PEM; default: in --tls-cert)\n"
	        "      --tls-ca FILE         CA certificates for client certificates (PEM)\n"
	        "      --user NAME           switch to this user after binding the\n"
	        "                            listeners (when started as root)\n"
	        "  -V, --version             print the version and exit\n"
	        "  -h, --help                print this help and exit\n");
}

/* "name" inside dir unless name is absolute; the result is heap-allocated. */
static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p)
		abort();
	if (name[0] == '/')
		snprintf(p, n, "%s", name);
	else
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/*
 * Lock the pid file so that two daemons never share a data directory.
 * Returns the descriptor (kept open for the process's life) or -1.
 */
static int pidfile_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "warrend: pid file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fprintf(stderr, "warrend: %s is locked: another warrend (pid %s) uses this data "
		                "directory\n", path, buf[0] ? buf : "?");
		close(fd);
		return -1;
	}
	return fd;
}

static void pidfile_write(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		fprintf(stderr, "warrend: cannot write the pid file: %s\n", strerror(errno));
}

/*
 * Detach: fork twice with setsid between, so the daemon is no session
 * leader.  The original process waits on a pipe for the daemon's verdict
 * (one byte: 0 ready, 1 failed) and exits with it.  Returns the write end
 * of that pipe in the daemon.
 */
static int daemonize(void)
{
	int p[2];
	if (pipe(p) != 0) {
		perror("warrend: pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("warrend: fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		unsigned char verdict = 1;
		ssize_t n;
		do {
			n = read(p[0], &verdict, 1);
		} while (n < 0 && errno == EINTR);
		_exit(n == 1 ? verdict : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	umask(027);
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		if (nul > STDERR_FILENO)
			close(nul);
	}
	return p[1];
}

/* ---- privileges ------------------------------------------------------- */

/* The account [security] user names, looked up once at start. */
struct runas {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* Resolve the user to switch to; 0, or -1 after saying why on stderr. */
static int runas_lookup(const char *name, struct runas *ra)
{
	errno = 0;
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		fprintf(stderr, "warrend: user '%s': %s\n", name,
		        errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (strlen(pw->pw_name) >= sizeof(ra->name)) {
		fprintf(stderr, "warrend: user '%s': name too long\n", name);
		return -1;
	}
	snprintf(ra->name, sizeof(ra->name), "%s", pw->pw_name);
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	if (geteuid() != 0 && geteuid() != ra->uid) {
		fprintf(stderr, "warrend: cannot switch to user '%s': not started as root\n", name);
		return -1;
	}
	return 0;
}

/*
 * Give everything under the directory dfd (closed here) to uid:gid, without
 * following symbolic links.  Only called on a data directory the user
 * already owns, so it hands over nothing the user could not take anyway;
 * it fixes up files root created there (this run's pid file and admin
 * socket, the store of an earlier run as root).
 */
static int chown_tree(int dfd, const char *path, uid_t uid, gid_t gid)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		fprintf(stderr, "warrend: %s: %s\n", path, strerror(errno));
		close(dfd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[PATH_MAX];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			fprintf(stderr, "warrend: %s: %s\n", sub, strerror(errno));
			rc = -1;
			continue;
		}
		if ((st.st_uid != uid || st.st_gid != gid) &&
		    fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
			fprintf(stderr, "warrend: chown %s: %s\n", sub, strerror(errno));
			rc = -1;
		}
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), e->d_name,
			                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || chown_tree(fd, sub, uid, gid) != 0)
				rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/*
 * Become ra for good: hand it the data directory's contents, then the
 * supplementary groups, the group and the user, in that order (after
 * setuid nothing else could be changed).  Refuses (-1, said on stderr)
 * rather than run on as root.
 */
static int runas_switch(const struct runas *ra, const char *data_dir)
{
	if (geteuid() != 0)
		return 0; /* runas_lookup made sure we already are ra */
	int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "warrend: data dir %s: %s\n", data_dir, strerror(errno));
		return -1;
	}
	if (chown_tree(dfd, data_dir, ra->uid, ra->gid) != 0)
		return -1;
	if (initgroups(ra->name, ra->gid) != 0 || setgid(ra->gid) != 0 || setuid(ra->uid) != 0) {
		fprintf(stderr, "warrend: cannot switch to user '%s': %s\n", ra->name,
		        strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "warrend: still root after switching to user '%s'\n", ra->name);
		return -1;
	}
	return 0;
}

/*
 * A private key others can read is a key others may have copied: say so,
 * naming the file, but start anyway (the operator may have reasons, such
 * as a group that other services share on purpose).
 */
static void warn_key_mode(struct log *lg, const struct broker_config *cfg)
{
	if (cfg->tls_nlisten == 0)
		return;
	bool in_cert = !cfg->tls_key || strcmp(cfg->tls_key, "none") == 0;
	const char *path = in_cert ? cfg->tls_cert : cfg->tls_key;
	struct stat st;
	if (!path || strcmp(path, "none") == 0 || stat(path, &st) != 0)
		return; /* broker_listen reports missing files */
	if (st.st_mode & (S_IRGRP | S_IROTH))
		log_warning(lg, "TLS private key file %s%s is readable by %s (mode %04o); "
		            "run: chmod 600 %s", path, in_cert ? " (with the certificate)" : "",
		            (st.st_mode & S_IROTH) ? "every user" : "its group",
		            (unsigned)(st.st_mode & 07777), path);
}

static void report(int fd, unsigned char verdict)
{
	if (fd < 0)
		return;
	if (write(fd, &verdict, 1) != 1) {
		/* the starter is gone; nothing to tell */
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	int log_level = LOG_INFO;
	/* Flags override the file, which overrides the defaults: remember the
	 * flags here and apply them after loading the file. */
	const char *flag_listen[BROKER_MAX_LISTENERS];
	int flag_nlisten = 0;
	const char *flag_data_dir = NULL, *flag_pid_file = NULL, *flag_admin_socket = NULL;
	const char *flag_tls_listen[BROKER_MAX_LISTENERS];
	int flag_tls_nlisten = 0;
	const char *flag_tls_cert = NULL, *flag_tls_key = NULL, *flag_tls_ca = NULL;
	const char *flag_user = NULL;
	int flag_log_level = -1;
	bool check_config = false, foreground = false;
	enum {
		OPT_LOG_LEVEL = 256, OPT_CHECK_CONFIG, OPT_PID_FILE, OPT_ADMIN_SOCKET,
		OPT_TLS_LISTEN, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_USER,
	};
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "admin-socket", required_argument, NULL, OPT_ADMIN_SOCKET },
		{ "tls-listen", required_argument, NULL, OPT_TLS_LISTEN },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "user", required_argument, NULL, OPT_USER },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, ":fl:d:c:Vh", opts, NULL)) != -1) {
		switch (o) {
		case 'f':
			foreground = true;
			break;
		case 'l':
			if (flag_nlisten == BROKER_MAX_LISTENERS) {
				fprintf(stderr, "warrend: --listen: at most %d listeners\n",
				        BROKER_MAX_LISTENERS);
				return 2;
			}
			flag_listen[flag_nlisten++] = optarg;
			break;
		case 'd':
			flag_data_dir = optarg;
			break;
		case 'c':
			cfg.config_file = optarg;
			break;
		case OPT_CHECK_CONFIG:
			check_config = true;
			break;
		case OPT_PID_FILE:
			flag_pid_file = optarg;
			break;
		case OPT_ADMIN_SOCKET:
			flag_admin_socket = optarg;
			break;
		case OPT_TLS_LISTEN:
			if (flag_tls_nlisten == BROKER_MAX_LISTENERS) {
				fprintf(stderr, "warrend: --tls-listen: at most %d listeners\n",
				        BROKER_MAX_LISTENERS);
				return 2;
			}
			flag_tls_listen[flag_tls_nlisten++] = optarg;
			break;
		case OPT_TLS_CERT:
			flag_tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			flag_tls_key = optarg;
			break;
		case OPT_TLS_CA:
			flag_tls_ca = optarg;
			break;
		case OPT_USER:
			flag_user = optarg;
			break;
		case OPT_LOG_LEVEL:
			flag_log_level = log_level_parse(optarg);
			if (flag_log_level < 0) {
				fprintf(stderr, "warrend: --log-level: unknown level '%s' "
				                "(error, warning, info, debug)\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("warrend %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "warrend: option '%s' needs a value\n", argv[optind - 1]);
			return 2;
		default:
			if (optopt)
				fprintf(stderr, "warrend: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "warrend: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "warrend: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	for (int i = 0; i < flag_nlisten + flag_tls_nlisten; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		char err[200];
		bool tls = i >= flag_nlisten;
		const char *spec = tls ? flag_tls_listen[i - flag_nlisten] : flag_listen[i];
		if (listener_parse_addr(spec, &ss, &sl, err, sizeof(err)) != 0) {
			fprintf(stderr, "warrend: --%slisten %s\n", tls ? "tls-" : "", err);
			return 2;
		}
	}

	struct config_store store;
	config_store_init(&store);
	struct admin *adm = NULL;
	struct metrics *met = NULL;
	int rc = 1;
	if (cfg.config_file) {
		char err[512];
		const char *path = cfg.config_file;
		if (config_load(&store, path, &cfg, &log_level, err, sizeof(err)) != 0) {
			fprintf(stderr, "warrend: %s\n", err);
			goto out_store;
		}
		cfg.config_file = path;
	}
	if (flag_nlisten > 0) {
		for (int i = 0; i < flag_nlisten; i++)
			cfg.listen[i] = flag_listen[i];
		cfg.nlisten = flag_nlisten;
	}
	if (flag_tls_nlisten > 0) {
		for (int i = 0; i < flag_tls_nlisten; i++)
			cfg.tls_listen[i] = flag_tls_listen[i];
		cfg.tls_nlisten = flag_tls_nlisten;
	}
	if (flag_tls_cert)
		cfg.tls_cert = flag_tls_cert;
	if (flag_tls_key)
		cfg.tls_key = flag_tls_key;
	if (flag_tls_ca)
		cfg.tls_ca = flag_tls_ca;
	if (flag_data_dir)
		cfg.data_dir = flag_data_dir;
	if (flag_pid_file)
		cfg.pid_file = flag_pid_file;
	if (flag_admin_socket)
		cfg.admin_socket = flag_admin_socket;
	if (flag_log_level >= 0)
		log_level = flag_log_level;
	if (flag_user)
		cfg.run_as_user = flag_user;
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = "127.0.0.1:5672";
	bool metrics_on = cfg.metrics_listen && strcmp(cfg.metrics_listen, "none") != 0;
	if (metrics_on) {
		/* config.c takes any string for it: catch a bad address here, so
		 * --check-config does too */
		struct sockaddr_storage ss;
		socklen_t sl;
		char err[200];
		if (listener_parse_addr(cfg.metrics_listen, &ss, &sl, err, sizeof(err)) != 0) {
			fprintf(stderr, "warrend: [metrics] listen %s\n", err);
			goto out_store;
		}
	}
	if (check_config) {
		config_dump(stdout, &cfg, log_level);
		rc = 0;
		goto out_store;
	}

	struct runas ra;
	bool switch_user = cfg.run_as_user && strcmp(cfg.run_as_user, "none") != 0;
	if (switch_user && runas_lookup(cfg.run_as_user, &ra) != 0)
		goto out_store;

	/* The daemon changes directory to /, so every path becomes absolute. */
	struct stat st;
	char data_dir[PATH_MAX];
	bool created = mkdir(cfg.data_dir, 0750) == 0;
	if ((!created && errno != EEXIST) ||
	    stat(cfg.data_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(cfg.data_dir, R_OK | W_OK | X_OK) != 0 || !realpath(cfg.data_dir, data_dir)) {
		fprintf(stderr, "warrend: data dir %s: %s\n", cfg.data_dir,
		        errno ? strerror(errno) : "not a directory");
		goto out_store;
	}
	/* anyone could plant or swap files the broker trusts */
	if (st.st_mode & S_IWOTH) {
		fprintf(stderr, "warrend: data dir %s is writable by every user (mode %04o); "
		                "run: chmod o-w %s\n", data_dir, (unsigned)(st.st_mode & 07777),
		        data_dir);
		goto out_store;
	}
	if (switch_user && geteuid() == 0 && st.st_uid != ra.uid) {
		/* a directory warrend just made is given away; an existing one must
		 * be the user's already, or its owner would lose it to them */
		if (created && chown(data_dir, ra.uid, ra.gid) != 0) {
			fprintf(stderr, "warrend: chown %s: %s\n", data_dir, strerror(errno));
			goto out_store;
		}
		if (!created) {
			fprintf(stderr, "warrend: data dir %s belongs to uid %ld, not to user '%s' "
			                "([security] user); run: chown -R %s %s\n", data_dir,
			        (long)st.st_uid, ra.name, ra.name, data_dir);
			goto out_store;
		}
	}
	cfg.data_dir = data_dir;
	char *pid_path = path_in(data_dir, cfg.pid_file);
	char *admin_path = path_in(data_dir, cfg.admin_socket);
	cfg.pid_file = pid_path;
	cfg.admin_socket = admin_path;
	int pid_fd = pidfile_lock(pid_path);
	if (pid_fd < 0)
		goto out_paths;
	/* Detach before anything starts a thread or an event loop: fork keeps
	 * only the calling thread, so a store writer thread started earlier
	 * would be missing in the daemon and nothing would reach the disk.
	 * Failures from here on still reach the starter: stderr stays open, and
	 * the daemon exiting without a verdict closes the pipe, which it reads
	 * as failure.  The pid file lock is shared with the child and so kept. */
	int ready_fd = -1;
	if (!foreground)
		ready_fd = daemonize();

	struct broker b;
	if (broker_init(&b, &cfg) != 0) {
		fprintf(stderr, "warrend: cannot initialise the event loop\n");
		goto out_pid;
	}
	b.log.level = (enum log_level)log_level;
	if (log_open(&b.log, cfg.log_file) != 0) {
		fprintf(stderr, "warrend: log file %s: %s\n", cfg.log_file, strerror(errno));
		goto out_broker;
	}
	char aerr[512];
	/* Recovery finishes before anything listens: clients never see a
	 * half-restored broker. */
	if (broker_store_open(&b, cfg.store_sync, aerr, sizeof(aerr)) != 0) {
		fprintf(stderr, "warrend: %s\n", aerr);
		goto out_broker;
	}
	/* before the listeners: the socket exists once AMQP clients can connect */
	adm = admin_open(&b, b.users, cfg.admin_socket, aerr, sizeof(aerr));
	if (!adm) {
		fprintf(stderr, "warrend: %s\n", aerr);
		goto out_broker;
	}
	admin_set_changed_hook(adm, broker_defs_changed, &b);
	if (metrics_on) {
		met = metrics_open(&b, cfg.metrics_listen, aerr, sizeof(aerr));
		if (!met) {
			fprintf(stderr, "warrend: %s\n", aerr);
			goto out_broker;
		}
	}
	warn_key_mode(&b.log, &cfg);
	if (broker_listen(&b) != 0)
		goto out_broker;
	/* the privileged steps are done: the listeners (maybe on ports below
	 * 1024), the admin socket and the files opened so far */
	if (switch_user) {
		if (runas_switch(&ra, data_dir) != 0)
			goto out_broker;
		log_info(&b.log, "running as user '%s' (uid %ld, gid %ld)", ra.name, (long)ra.uid,
		         (long)ra.gid);
	} else if (geteuid() == 0) {
		log_warning(&b.log, "running as root: set [security] user to drop privileges");
	}
	/* not earlier: relative paths (log file, TLS files) are opened above */
	if (!foreground && chdir("/") != 0)
		log_warning(&b.log, "chdir /: %s", strerror(errno));
	pidfile_write(pid_fd);
	log_info(&b.log, "warrend %s started (pid %ld, data dir %s)", PACKAGE_VERSION,
	         (long)getpid(), data_dir);
	report(ready_fd, 0);
	broker_run(&b);
	rc = b.exit_code;
	log_info(&b.log, "warrend stopped");
	unlink(pid_path);
out_broker:
	metrics_close(met);
	if (adm)
		admin_close(adm);
	log_close(&b.log);
	broker_free(&b);
out_pid:
	close(pid_fd);
out_paths:
	free(pid_path);
	free(admin_path);
out_store:
	config_store_free(&store);
	return rc;
}
