/*
 * warren.conf parser: every key applied, every error message with its
 * file:line, unit suffixes, the all-or-nothing rule, and that keys.def's
 * defaults and bounds agree with broker_config_defaults() and themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "util/config.h"
#include "util/log.h"

static char tmpdir[200];
static char conf_path[256];
static struct config_store store;
static struct broker_config cfg;
static int level;
static char err[512];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/warren-config-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(conf_path, sizeof(conf_path), "%s/warren.conf", tmpdir);
	config_store_init(&store);
	broker_config_defaults(&cfg);
	level = LOG_INFO;
	err[0] = '\0';
}

static void teardown(void)
{
	config_store_free(&store);
	unlink(conf_path);
	rmdir(tmpdir);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static int load(const char *text)
{
	write_conf(text);
	return config_load(&store, conf_path, &cfg, &level, err, sizeof(err));
}

/* Expect the load to fail with "<path>:<line>: <msg>" and change nothing. */
static void expect_error(const char *text, unsigned line, const char *msg)
{
	struct broker_config before = cfg;
	int level_before = level;
	struct config_str *head_before = store.head;
	ck_assert_int_eq(load(text), -1);
	char want[1024];
	snprintf(want, sizeof(want), "%s:%u: %s", conf_path, line, msg);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(memcmp(&before, &cfg, sizeof(cfg)), 0);
	ck_assert_int_eq(level, level_before);
	ck_assert_ptr_eq(store.head, head_before);
}

START_TEST(test_full_file)
{
	ck_assert_int_eq(load(
		"# a full configuration\n"
		"\n"
		"[amqp]\n"
		"listen = 0.0.0.0:5673\n"
		"listen = [::1]:5674\n"
		"  channel_max\t=\t100  \n"
		"frame_max = 65536\n"
		"heartbeat = 30s\n"
		"handshake_timeout = 2500ms\n"
		"[limits]\n"
		"max_message_size = 16MiB\n"
		"max_connections = 1000\n"
		"max_connections_per_user = 10\n"
		"max_connections_per_vhost = 20\n"
		"max_queues_per_vhost = 300\n"
		"connection_output_limit = 256KiB\n"
		"\n"
		"[resources]\n"
		"vm_memory_high_watermark = 0.6\n"
		"disk_free_limit = 1GB\n"
		"[paths]\n"
		"data_dir = \"/var/lib/warren data\"\n"
		"[security]\n"
		"user = warren\n"
		"[log]\n"
		"level = debug\n"), 0);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(cfg.nlisten, 2);
	ck_assert_str_eq(cfg.listen[0], "0.0.0.0:5673");
	ck_assert_str_eq(cfg.listen[1], "[::1]:5674");
	ck_assert_uint_eq(cfg.channel_max, 100);
	ck_assert_uint_eq(cfg.frame_max, 65536);
	ck_assert_uint_eq(cfg.heartbeat, 30);
	ck_assert_double_eq(cfg.handshake_timeout, 2.5);
	ck_assert_uint_eq(cfg.max_message_size, 16u << 20);
	ck_assert_uint_eq(cfg.max_connections, 1000);
	ck_assert_uint_eq(cfg.max_connections_per_user, 10);
	ck_assert_uint_eq(cfg.max_connections_per_vhost, 20);
	ck_assert_uint_eq(cfg.max_queues_per_vhost, 300);
	ck_assert_str_eq(cfg.run_as_user, "warren");
	ck_assert_uint_eq(cfg.conn_output_limit, 256u << 10);
	ck_assert_double_eq(cfg.vm_memory_high_watermark, 0.6);
	ck_assert_uint_eq(cfg.disk_free_limit, 1000000000u);
	ck_assert_str_eq(cfg.data_dir, "/var/lib/warren data");
	ck_assert_ptr_null(cfg.config_file);
	ck_assert_int_eq(level, LOG_DEBUG);
}
END_TEST

START_TEST(test_absent_keys_keep_defaults)
{
	struct broker_config def;
	broker_config_defaults(&def);
	cfg.listen[cfg.nlisten++] = "127.0.0.1:1";
	cfg.config_file = "/etc/warren.conf";
	level = LOG_WARNING;
	ck_assert_int_eq(load("[amqp]\nchannel_max = 7\n[log]\n"), 0);
	ck_assert_uint_eq(cfg.channel_max, 7);
	ck_assert_int_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0], "127.0.0.1:1");
	ck_assert_str_eq(cfg.config_file, "/etc/warren.conf");
	ck_assert_str_eq(cfg.data_dir, def.data_dir);
	ck_assert_uint_eq(cfg.frame_max, def.frame_max);
	ck_assert_uint_eq(cfg.heartbeat, def.heartbeat);
	ck_assert_double_eq(cfg.handshake_timeout, def.handshake_timeout);
	ck_assert_uint_eq(cfg.max_message_size, def.max_message_size);
	ck_assert_uint_eq(cfg.max_connections, def.max_connections);
	ck_assert_uint_eq(cfg.max_connections_per_user, def.max_connections_per_user);
	ck_assert_uint_eq(cfg.max_connections_per_vhost, def.max_connections_per_vhost);
	ck_assert_uint_eq(cfg.max_queues_per_vhost, def.max_queues_per_vhost);
	ck_assert_ptr_eq(cfg.run_as_user, def.run_as_user);
	ck_assert_uint_eq(cfg.conn_output_limit, def.conn_output_limit);
	ck_assert_double_eq(cfg.vm_memory_high_watermark, def.vm_memory_high_watermark);
	ck_assert_uint_eq(cfg.disk_free_limit, def.disk_free_limit);
	ck_assert_int_eq(level, LOG_WARNING);
}
END_TEST

START_TEST(test_empty_file)
{
	struct broker_config before = cfg;
	ck_assert_int_eq(load(""), 0);
	ck_assert_int_eq(memcmp(&before, &cfg, sizeof(cfg)), 0);
	ck_assert_int_eq(load("# only comments\n\n   \n\t# indented\n"), 0);
	ck_assert_int_eq(memcmp(&before, &cfg, sizeof(cfg)), 0);
}
END_TEST

START_TEST(test_listen_repeats)
{
	/* The file's first listen replaces what the caller had; later ones add. */
	cfg.listen[cfg.nlisten++] = "127.0.0.1:5672";
	ck_assert_int_eq(load("[amqp]\nlisten = :5680\nlisten = *:5681\n"
	                      "listen = localhost:5682\n"), 0);
	ck_assert_int_eq(cfg.nlisten, 3);
	ck_assert_str_eq(cfg.listen[0], ":5680");
	ck_assert_str_eq(cfg.listen[1], "*:5681");
	ck_assert_str_eq(cfg.listen[2], "localhost:5682");

	char text[2048] = "[amqp]\n";
	for (int i = 0; i < BROKER_MAX_LISTENERS; i++) {
		char l[64];
		snprintf(l, sizeof(l), "listen = 127.0.0.1:%d\n", 6000 + i);
		strcat(text, l);
	}
	ck_assert_int_eq(load(text), 0);
	ck_assert_int_eq(cfg.nlisten, BROKER_MAX_LISTENERS);
	ck_assert_str_eq(cfg.listen[BROKER_MAX_LISTENERS - 1], "127.0.0.1:6015");
	strcat(text, "listen = 127.0.0.1:7000\n");
	char msg[64];
	snprintf(msg, sizeof(msg), "too many listen entries (at most %d)", BROKER_MAX_LISTENERS);
	expect_error(text, BROKER_MAX_LISTENERS + 2, msg);
}
END_TEST

START_TEST(test_syntax)
{
	ck_assert_int_eq(load("[ amqp ]   # trailing comment\r\n"
	                      "channel_max=9 # inline comment\r\n"
	                      "[paths]\n"
	                      "data_dir = \"/a # b \"  # quoted keeps '#'\n"), 0);
	ck_assert_uint_eq(cfg.channel_max, 9);
	ck_assert_str_eq(cfg.data_dir, "/a # b ");
	ck_assert_int_eq(load("[paths]\ndata_dir = /x#y\n"), 0);
	ck_assert_str_eq(cfg.data_dir, "/x#y");
	ck_assert_int_eq(load("\xEF\xBB\xBF[amqp]\nchannel_max = 10\n"), 0);
	ck_assert_uint_eq(cfg.channel_max, 10);
	/* No newline at the end of the last line. */
	ck_assert_int_eq(load("[amqp]\nchannel_max = 11"), 0);
	ck_assert_uint_eq(cfg.channel_max, 11);
}
END_TEST

START_TEST(test_errors)
{
	expect_error("[amqp]\nchannel_max = 1\nfoo = 2\n", 3,
	             "unknown key 'foo' in section [amqp]");
	expect_error("[limits]\nheartbeat = 5\n", 2,
	             "unknown key 'heartbeat' in section [limits]");
	expect_error("[amqp]\nheartbeat = abc\n", 2,
	             "invalid value 'abc' for heartbeat: expected a duration in whole seconds");
	expect_error("[amqp]\nhandshake_timeout = 5 parsecs\n", 2,
	             "invalid value '5 parsecs' for handshake_timeout: expected a duration");
	expect_error("[amqp]\nheartbeat = 500ms\n", 2,
	             "invalid value '500ms' for heartbeat: expected a duration in whole seconds");
	expect_error("\n\n[amqp]\n\nchannel_max = 70000\n", 5,
	             "value 70000 for channel_max out of range 1..65535");
	expect_error("[amqp]\nchannel_max = 0\n", 2,
	             "value 0 for channel_max out of range 1..65535");
	expect_error("[amqp]\nchannel_max = 99999999999999999999999\n", 2,
	             "value 99999999999999999999999 for channel_max out of range 1..65535");
	expect_error("[amqp]\nchannel_max = -1\n", 2,
	             "invalid value '-1' for channel_max: expected a non-negative integer");
	expect_error("[amqp]\nchannel_max = 0x10\n", 2,
	             "invalid value '0x10' for channel_max: expected a non-negative integer");
	expect_error("[amqp]\nchannel_max =\n", 2,
	             "invalid value '' for channel_max: expected a non-negative integer");
	expect_error("[limits]\nmax_queues_per_vhost = -1\n", 2,
	             "invalid value '-1' for max_queues_per_vhost: expected a non-negative integer");
	expect_error("[limits]\nmax_connections_per_user = 4294967296\n", 2,
	             "value 4294967296 for max_connections_per_user out of range 0..4294967295");
	expect_error("[security]\nuser =\n", 2,
	             "invalid value '' for user: expected a non-empty string");
	expect_error("[amqp]\nchannel_max 5\n", 2, "missing '=' in 'channel_max 5'");
	expect_error("[amqp]\n = 5\n", 2, "missing key name before '='");
	expect_error("[amqp]\n[foo]\n", 2, "unknown section [foo]");
	expect_error("[amqp\n", 1, "unterminated section header '[amqp'");
	expect_error("[amqp] x\n", 1, "unexpected text after section header: 'x'");
	expect_error("channel_max = 5\n", 1, "key 'channel_max' outside any [section]");
	expect_error("[amqp]\nchannel_max = 5\nframe_max = 8192\nchannel_max = 6\n", 4,
	             "duplicate key 'channel_max' in section [amqp] (first set on line 2)");
	expect_error("[paths]\ndata_dir = \"/tmp\n", 2, "unterminated quoted value");
	expect_error("[paths]\ndata_dir = \"/tmp\" x\n", 2,
	             "unexpected text after quoted value: 'x'");
	expect_error("[paths]\ndata_dir = \"\"\n", 2,
	             "invalid value '' for data_dir: expected a non-empty string");
	expect_error("[amqp]\nlisten = 127.0.0.1\n", 2,
	             "invalid value '127.0.0.1' for listen: expected HOST:PORT");
	expect_error("[amqp]\nlisten = example.com:5672\n", 2,
	             "invalid value 'example.com:5672' for listen: expected HOST:PORT");
	expect_error("[amqp]\nlisten = 1.2.3.4:99999\n", 2,
	             "invalid value '1.2.3.4:99999' for listen: expected HOST:PORT");
	expect_error("[log]\nlevel = loud\n", 2,
	             "invalid value 'loud' for level: expected error, warning, info or debug");
	expect_error("[resources]\nvm_memory_high_watermark = 1.5\n", 2,
	             "value 1.5 for vm_memory_high_watermark out of range 0..1");
	expect_error("[resources]\nvm_memory_high_watermark = -0.1\n", 2,
	             "value -0.1 for vm_memory_high_watermark out of range 0..1");
	expect_error("[resources]\nvm_memory_high_watermark = nan\n", 2,
	             "invalid value 'nan' for vm_memory_high_watermark: expected a number");
	expect_error("[resources]\nvm_memory_high_watermark = 1e-1\n", 2,
	             "invalid value '1e-1' for vm_memory_high_watermark: expected a number");
	expect_error("[limits]\nmax_message_size = 1GiB\n", 2,
	             "value 1GiB for max_message_size out of range 1..512MiB");
	expect_error("[limits]\nmax_message_size = 12 furlongs\n", 2,
	             "invalid value '12 furlongs' for max_message_size: expected a size");
	expect_error("[limits]\nmax_message_size = 1.5MiB\n", 2,
	             "invalid value '1.5MiB' for max_message_size: expected a size");
	expect_error("[resources]\ndisk_free_limit = 20000PiB\n", 2,
	             "value 20000PiB for disk_free_limit out of range 0..1PiB");
	expect_error("[limits]\nmax_connections = 4294967296\n", 2,
	             "value 4294967296 for max_connections out of range 0..4294967295");
	expect_error("[amqp]\nhandshake_timeout = 50ms\n", 2,
	             "value 50ms for handshake_timeout out of range 100ms..3600s");
	expect_error("[amqp]\nheartbeat = 19h\n", 2,
	             "value 19h for heartbeat out of range 0s..65535s");
	expect_error("[amqp]\nheartbeat = -1s\n", 2,
	             "invalid value '-1s' for heartbeat: expected a duration in whole seconds");

	static const char nul_line[] = "[amqp]\nchannel_max = 1\0 2\n";
	FILE *f = fopen(conf_path, "w");
	ck_assert_ptr_nonnull(f);
	fwrite(nul_line, 1, sizeof(nul_line) - 1, f);
	fclose(f);
	ck_assert_int_eq(config_load(&store, conf_path, &cfg, &level, err, sizeof(err)), -1);
	char want[1024];
	snprintf(want, sizeof(want), "%s:2: line contains a NUL byte", conf_path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_error_after_good_lines_changes_nothing)
{
	/* Lines before the bad one were valid, yet nothing may be applied. */
	expect_error("[amqp]\nlisten = :1\nchannel_max = 5\n[paths]\ndata_dir = /x\n"
	             "[log]\nlevel = debug\nlevel = info\n", 8,
	             "duplicate key 'level' in section [log] (first set on line 7)");
	ck_assert_int_eq(cfg.nlisten, 0);
	ck_assert_uint_eq(cfg.channel_max, 2047);
	ck_assert_str_eq(cfg.data_dir, "./var");
	ck_assert_int_eq(level, LOG_INFO);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	ck_assert_int_eq(config_load(&store, path, &cfg, &level, err, sizeof(err)), -1);
	char want[1024];
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_error_truncated)
{
	/* A small buffer still gets a NUL-terminated prefix. */
	char small[8];
	write_conf("[nope]\n");
	ck_assert_int_eq(config_load(&store, conf_path, &cfg, &level, small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, conf_path, sizeof(small) - 1), 0);
}
END_TEST

/* Unit suffixes: text -> expected value. */
static const struct {
	const char *text;
	unsigned long long bytes;
} size_vectors[] = {
	{ "4096", 4096 },
	{ "0", 0 },
	{ "50MB", 50000000 },
	{ "50 MB", 50000000 },
	{ "128MiB", 128ull << 20 },
	{ "128mib", 128ull << 20 },
	{ "1GiB", 1ull << 30 },
	{ "2GB", 2000000000 },
	{ "3kB", 3000 },
	{ "3KB", 3000 },
	{ "3KiB", 3072 },
	{ "7B", 7 },
	{ "1TiB", 1ull << 40 },
	{ "1TB", 1000000000000ull },
	{ "1PiB", 1ull << 50 },
};

START_TEST(test_size_suffixes)
{
	char text[128];
	snprintf(text, sizeof(text), "[resources]\ndisk_free_limit = %s\n", size_vectors[_i].text);
	ck_assert_msg(load(text) == 0, "%s: %s", size_vectors[_i].text, err);
	ck_assert_uint_eq(cfg.disk_free_limit, size_vectors[_i].bytes);
}
END_TEST

static const struct {
	const char *text;
	double seconds;
} duration_vectors[] = {
	{ "10", 10.0 },
	{ "10s", 10.0 },
	{ "10 s", 10.0 },
	{ "500ms", 0.5 },
	{ "100ms", 0.1 },
	{ "1.5", 1.5 },
	{ "1.5s", 1.5 },
	{ ".25s", 0.25 },
	{ "2m", 120.0 },
	{ "2min", 120.0 },
	{ "1h", 3600.0 },
};

START_TEST(test_duration_suffixes)
{
	char text[128];
	snprintf(text, sizeof(text), "[amqp]\nhandshake_timeout = %s\n",
	         duration_vectors[_i].text);
	ck_assert_msg(load(text) == 0, "%s: %s", duration_vectors[_i].text, err);
	ck_assert_double_eq_tol(cfg.handshake_timeout, duration_vectors[_i].seconds, 1e-12);
}
END_TEST

START_TEST(test_integer_duration)
{
	ck_assert_int_eq(load("[amqp]\nheartbeat = 2m\n"), 0);
	ck_assert_uint_eq(cfg.heartbeat, 120);
	ck_assert_int_eq(load("[amqp]\nheartbeat = 0\n"), 0);
	ck_assert_uint_eq(cfg.heartbeat, 0);
	ck_assert_int_eq(load("[amqp]\nheartbeat = 2000ms\n"), 0);
	ck_assert_uint_eq(cfg.heartbeat, 2);
	ck_assert_int_eq(load("[amqp]\nheartbeat = 65535\n"), 0);
	ck_assert_uint_eq(cfg.heartbeat, 65535);
}
END_TEST

START_TEST(test_levels)
{
	static const struct { const char *t; int l; } v[] = {
		{ "error", LOG_ERROR }, { "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", v[i].t);
		ck_assert_int_eq(load(text), 0);
		ck_assert_int_eq(level, v[i].l);
	}
}
END_TEST

/* Build a file setting every key to one column of keys.def. */
enum column { COL_DEF, COL_MIN, COL_MAX };

static void write_column(enum column col)
{
	FILE *f = fopen(conf_path, "w");
	ck_assert_ptr_nonnull(f);
	const char *section = "";
	for (size_t i = 0; i < config_key_count(); i++) {
		const struct config_key *k = config_key_get(i);
		const char *v = col == COL_DEF ? k->def : col == COL_MIN ? k->min : k->max;
		if (*v == '\0')
			v = k->def;
		if (strcmp(section, k->section) != 0)
			fprintf(f, "[%s]\n", k->section);
		section = k->section;
		fprintf(f, "%s = \"%s\"\n", k->name, v);
	}
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_keys_def_defaults_match_broker)
{
	struct broker_config def;
	broker_config_defaults(&def);
	memset(&cfg, 0, sizeof(cfg));
	level = -1;
	write_column(COL_DEF);
	ck_assert_msg(config_load(&store, conf_path, &cfg, &level, err, sizeof(err)) == 0,
	              "%s", err);
	/* warrend falls back to this listener when none is given. */
	ck_assert_int_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0], "127.0.0.1:5672");
	ck_assert_str_eq(cfg.data_dir, def.data_dir);
	ck_assert_str_eq(cfg.pid_file, def.pid_file);
	ck_assert_str_eq(cfg.admin_socket, def.admin_socket);
	ck_assert_str_eq(cfg.log_file, def.log_file);
	ck_assert_uint_eq(cfg.channel_max, def.channel_max);
	ck_assert_uint_eq(cfg.frame_max, def.frame_max);
	ck_assert_uint_eq(cfg.heartbeat, def.heartbeat);
	ck_assert_double_eq(cfg.handshake_timeout, def.handshake_timeout);
	ck_assert_uint_eq(cfg.max_message_size, def.max_message_size);
	ck_assert_uint_eq(cfg.max_connections, def.max_connections);
	ck_assert_uint_eq(cfg.max_connections_per_user, def.max_connections_per_user);
	ck_assert_uint_eq(cfg.max_connections_per_vhost, def.max_connections_per_vhost);
	ck_assert_uint_eq(cfg.max_queues_per_vhost, def.max_queues_per_vhost);
	/* the sentinel default: NULL (left by memset) and "none" both mean it */
	ck_assert_str_eq(cfg.run_as_user, "none");
	ck_assert(def.run_as_user == NULL || strcmp(def.run_as_user, "none") == 0);
	ck_assert_uint_eq(cfg.conn_output_limit, def.conn_output_limit);
	ck_assert_double_eq(cfg.vm_memory_high_watermark, def.vm_memory_high_watermark);
	ck_assert_uint_eq(cfg.disk_free_limit, def.disk_free_limit);
	ck_assert_int_eq(level, LOG_INFO);
}
END_TEST

START_TEST(test_keys_def_bounds)
{
	/* Each bound is a legal value of its own key (a bound that did not parse
	 * would be ignored by the range check).  Defaults lie within the bounds:
	 * test_keys_def_defaults_match_broker loads them through the check. */
	write_column(COL_MIN);
	ck_assert_msg(config_load(&store, conf_path, &cfg, &level, err, sizeof(err)) == 0,
	              "min: %s", err);
	ck_assert_uint_eq(cfg.channel_max, 1);
	ck_assert_uint_eq(cfg.heartbeat, 0);
	ck_assert_double_eq(cfg.handshake_timeout, 0.1);
	write_column(COL_MAX);
	ck_assert_msg(config_load(&store, conf_path, &cfg, &level, err, sizeof(err)) == 0,
	              "max: %s", err);
	ck_assert_uint_eq(cfg.channel_max, 65535);
	ck_assert_uint_eq(cfg.max_message_size, 512u << 20);
	ck_assert_uint_eq(cfg.max_connections, 4294967295u);
	ck_assert_uint_eq(cfg.max_connections_per_user, 4294967295u);
	ck_assert_uint_eq(cfg.max_connections_per_vhost, 4294967295u);
	ck_assert_uint_eq(cfg.max_queues_per_vhost, 4294967295u);
	ck_assert_uint_eq(cfg.disk_free_limit, 1ull << 50);
}
END_TEST

START_TEST(test_key_table)
{
	ck_assert_uint_eq(config_key_count(), 30);
	ck_assert_str_eq(config_key_name(0), "amqp.listen");
	ck_assert_ptr_null(config_key_name(config_key_count()));
	ck_assert_ptr_null(config_key_get(config_key_count()));
	for (size_t i = 0; i < config_key_count(); i++) {
		const struct config_key *k = config_key_get(i);
		char full[128];
		snprintf(full, sizeof(full), "%s.%s", k->section, k->name);
		ck_assert_str_eq(config_key_name(i), full);
		ck_assert_str_eq(k->full_name, full);
		ck_assert_uint_gt(strlen(k->help), 0);
		for (size_t j = i + 1; j < config_key_count(); j++)
			ck_assert_str_ne(config_key_get(j)->full_name, k->full_name);
		/* Rows of a section are adjacent (the parser and dump rely on it). */
		if (i > 0 && strcmp(config_key_get(i - 1)->section, k->section) != 0)
			for (size_t j = 0; j < i; j++)
				ck_assert_str_ne(config_key_get(j)->section, k->section);
	}
	ck_assert_str_eq(config_type_name(config_key_get(3)->type), "duration");
	ck_assert_str_eq(config_key_get(3)->full_name, "amqp.heartbeat");
}
END_TEST

static char *dump_to_string(const struct broker_config *c, int lvl)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	config_dump(f, c, lvl);
	fclose(f);
	return buf;
}

START_TEST(test_dump_defaults)
{
	char *out = dump_to_string(&cfg, LOG_INFO);
	ck_assert_str_eq(out,
		"[amqp]\n"
		"listen = 127.0.0.1:5672\n"
		"channel_max = 2047\n"
		"frame_max = 131072\n"
		"heartbeat = 60s\n"
		"handshake_timeout = 10s\n"
		"\n"
		"[tls]\n"
		"listen = none\n"
		"cert = none\n"
		"key = none\n"
		"ca = none\n"
		"ciphers = default\n"
		"ciphersuites = default\n"
		"min_version = TLSv1.2\n"
		"verify_peer = false\n"
		"fail_if_no_peer_cert = false\n"
		"\n"
		"[limits]\n"
		"max_message_size = 128MiB\n"
		"max_connections = 0\n"
		"max_connections_per_user = 0\n"
		"max_connections_per_vhost = 0\n"
		"max_queues_per_vhost = 0\n"
		"connection_output_limit = 1MiB\n"
		"\n"
		"[resources]\n"
		"vm_memory_high_watermark = 0.4\n"
		"disk_free_limit = 50MB\n"
		"\n"
		"[paths]\n"
		"data_dir = ./var\n"
		"pid_file = warrend.pid\n"
		"admin_socket = warrend.sock\n"
		"\n"
		"[security]\n"
		"user = none\n"
		"\n"
		"[log]\n"
		"level = info\n"
		"file = stderr\n"
		"\n"
		"[store]\n"
		"sync = always\n"
		"\n"
		"[metrics]\n"
		"listen = none\n");
	free(out);
}
END_TEST

START_TEST(test_dump_round_trip)
{
	ck_assert_int_eq(load("[amqp]\nlisten = :1\nlisten = [::]:2\nheartbeat = 0\n"
	                      "handshake_timeout = 1.2345s\n"
	                      "[limits]\nmax_message_size = 1000001\n"
	                      "max_queues_per_vhost = 17\n"
	                      "connection_output_limit = 3000KiB\n"
	                      "[resources]\nvm_memory_high_watermark = 0.123456789\n"
	                      "disk_free_limit = 0\n"
	                      "[paths]\ndata_dir = \" spaced # dir\"\n"
	                      "[security]\nuser = warren\n"
	                      "[log]\nlevel = warning\n"), 0);
	char *out = dump_to_string(&cfg, level);
	ck_assert_ptr_nonnull(strstr(out, "listen = :1\nlisten = [::]:2\n"));
	ck_assert_ptr_nonnull(strstr(out, "heartbeat = 0s\n"));
	ck_assert_ptr_nonnull(strstr(out, "handshake_timeout = 1.2345s\n"));
	ck_assert_ptr_nonnull(strstr(out, "max_message_size = 1000001\n"));
	ck_assert_ptr_nonnull(strstr(out, "connection_output_limit = 3000KiB\n"));
	ck_assert_ptr_nonnull(strstr(out, "vm_memory_high_watermark = 0.123456789\n"));
	ck_assert_ptr_nonnull(strstr(out, "disk_free_limit = 0\n"));
	ck_assert_ptr_nonnull(strstr(out, "data_dir = \" spaced # dir\"\n"));
	ck_assert_ptr_nonnull(strstr(out, "level = warning\n"));

	/* Reading the dump back gives the same settings. */
	struct broker_config first = cfg;
	int first_level = level;
	write_conf(out);
	free(out);
	broker_config_defaults(&cfg);
	level = LOG_DEBUG;
	ck_assert_msg(config_load(&store, conf_path, &cfg, &level, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg.nlisten, first.nlisten);
	for (int i = 0; i < cfg.nlisten; i++)
		ck_assert_str_eq(cfg.listen[i], first.listen[i]);
	ck_assert_str_eq(cfg.data_dir, first.data_dir);
	ck_assert_uint_eq(cfg.channel_max, first.channel_max);
	ck_assert_uint_eq(cfg.frame_max, first.frame_max);
	ck_assert_uint_eq(cfg.heartbeat, first.heartbeat);
	ck_assert(cfg.handshake_timeout == first.handshake_timeout);
	ck_assert_uint_eq(cfg.max_message_size, first.max_message_size);
	ck_assert_uint_eq(cfg.max_connections, first.max_connections);
	ck_assert_uint_eq(cfg.max_queues_per_vhost, first.max_queues_per_vhost);
	ck_assert_str_eq(cfg.run_as_user, first.run_as_user);
	ck_assert_uint_eq(cfg.conn_output_limit, first.conn_output_limit);
	ck_assert(cfg.vm_memory_high_watermark == first.vm_memory_high_watermark);
	ck_assert_uint_eq(cfg.disk_free_limit, first.disk_free_limit);
	ck_assert_int_eq(level, first_level);
}
END_TEST

START_TEST(test_tls_listen)
{
	/* [tls] listen has its own list: the [amqp] one is untouched */
	ck_assert_int_eq(load("[tls]\nlisten = 127.0.0.1:5671\nlisten = [::1]:5671\n"), 0);
	ck_assert_int_eq(cfg.tls_nlisten, 2);
	ck_assert_str_eq(cfg.tls_listen[0], "127.0.0.1:5671");
	ck_assert_str_eq(cfg.tls_listen[1], "[::1]:5671");
	ck_assert_int_eq(cfg.nlisten, 0);
	char *out = dump_to_string(&cfg, level);
	ck_assert_ptr_nonnull(strstr(out, "[tls]\nlisten = 127.0.0.1:5671\nlisten = [::1]:5671\n"));
	ck_assert_ptr_nonnull(strstr(out, "[amqp]\nlisten = 127.0.0.1:5672\n"));
	free(out);
	/* the default, none, reads back as no listener */
	ck_assert_int_eq(load("[tls]\nlisten = none\n"), 0);
	ck_assert_int_eq(cfg.tls_nlisten, 0);
	expect_error("[tls]\nlisten = :5671\nlisten = none\n", 3,
	             "listen = none after other listen lines");
	/* none is not an address for [amqp] listen, whose default is one */
	expect_error("[amqp]\nlisten = none\n", 2,
	             "invalid value 'none' for listen: expected HOST:PORT");
}
END_TEST

START_TEST(test_store_outlives_reloads)
{
	/* Strings from an earlier load stay valid after a later one. */
	ck_assert_int_eq(load("[paths]\ndata_dir = /one\n"), 0);
	const char *one = cfg.data_dir;
	ck_assert_int_eq(load("[paths]\ndata_dir = /two\n"), 0);
	ck_assert_str_eq(one, "/one");
	ck_assert_str_eq(cfg.data_dir, "/two");
	unlink(conf_path);
	ck_assert_str_eq(one, "/one");
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_file);
	tcase_add_test(tc, test_absent_keys_keep_defaults);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_listen_repeats);
	tcase_add_test(tc, test_syntax);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_integer_duration);
	tcase_add_loop_test(tc, test_size_suffixes, 0,
	                    (int)(sizeof(size_vectors) / sizeof(size_vectors[0])));
	tcase_add_loop_test(tc, test_duration_suffixes, 0,
	                    (int)(sizeof(duration_vectors) / sizeof(duration_vectors[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_error_after_good_lines_changes_nothing);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_error_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_key_table);
	tcase_add_test(tc, test_keys_def_defaults_match_broker);
	tcase_add_test(tc, test_keys_def_bounds);
	tcase_add_test(tc, test_dump_defaults);
	tcase_add_test(tc, test_dump_round_trip);
	tcase_add_test(tc, test_tls_listen);
	tcase_add_test(tc, test_store_outlives_reloads);
	suite_add_tcase(s, tc);
	return s;
}
