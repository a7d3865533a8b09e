/*
 * knownhosts: the known_hosts reader of the SSH executor — HMAC-SHA1 against
 * RFC 2202, OpenSSH's pattern lists, hashed names written by ssh-keygen -H,
 * lines it must skip (and report), @revoked, changed keys, accept-new appends.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/knownhosts.h"
#include "util/util.h"

/* two ed25519 public keys (ssh-keygen), and hashed lines for them made by ssh-keygen -H */
#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL16/UXKV9YSdpdOQhH8dAtTbkGeInrNsCqq5ehS5zCy"
#define KEY_B "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICefXmu6GBJIXdCnf6SDOii/Iiv9zfl/qwzfFHxMyjgs"
#define HASHED_WEB1_2222 "|1|V0sanjY9LybZHnq6SFe4q3U63dk=|6yuPd6un2Cff4FXNb9cwBfu9SfY="
#define HASHED_WEB2 "|1|A/N8R2niES97YIXdSYM/cnJEroI=|PEIkzAOYuc3/O5AE8NtNNf0k+cI="

static char hex[41];

static const char *to_hex(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	return hex;
}

Test(knownhosts, hmac_sha1_rfc2202)
{
	unsigned char out[20], key[80];
	memset(key, 0x0b, 20);
	exec_kh_hmac_sha1(key, 20, "Hi There", 8, out);
	cr_assert_str_eq(to_hex(out, 20), "b617318655057264e28bc0b6fb378c8ef146be00");
	exec_kh_hmac_sha1((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, out);
	cr_assert_str_eq(to_hex(out, 20), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
	memset(key, 0xaa, 80);
	const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
	exec_kh_hmac_sha1(key, 80, m, strlen(m), out);
	cr_assert_str_eq(to_hex(out, 20), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
	/* a message longer than one block */
	char big[200];
	memset(big, 'x', sizeof big);
	memset(key, 0x0c, 20);
	exec_kh_hmac_sha1(key, 20, big, sizeof big, out);
	cr_assert_str_eq(to_hex(out, 20), "bebe59ac7c9ec9e5bce25b6485498f1cb2b76ed1");
}

Test(knownhosts, pattern_lists_as_openssh)
{
	cr_assert_eq(exec_kh_match_list("web1", "web1"), 1);
	cr_assert_eq(exec_kh_match_list("web1", "db1,web1"), 1);
	cr_assert_eq(exec_kh_match_list("web1", "web*"), 1);
	cr_assert_eq(exec_kh_match_list("web1", "we?1"), 1);
	cr_assert_eq(exec_kh_match_list("web1", "WEB1"), 1, "patterns are compared in lower case");
	cr_assert_eq(exec_kh_match_list("web1", "web"), 0);
	cr_assert_eq(exec_kh_match_list("web1", "*,!web1"), -1, "a negation wins over any positive match");
	cr_assert_eq(exec_kh_match_list("web2", "*,!web1"), 1);
	cr_assert_eq(exec_kh_match_list("web1", "!web1"), -1);
	cr_assert_eq(exec_kh_match_list("[10.0.0.1]:2222", "[10.0.0.1]:2222"), 1);
	cr_assert_eq(exec_kh_match_list("[10.0.0.1]:2222", "10.0.0.1"), 0, "a port other than 22 is part of the name");
	cr_assert_eq(exec_kh_match_list("a.b.example.com", "*.example.com"), 1);
	cr_assert_eq(exec_kh_match_list("example.com", "*.example.com"), 0);
	cr_assert_eq(exec_kh_match_list("x", ""), 0);
	char *long_pattern = xmalloc(2000);
	memset(long_pattern, '*', 1999);
	long_pattern[1999] = '\0';
	cr_assert_eq(exec_kh_match_list("x", long_pattern), 0, "a pattern over 1023 characters matches nothing");
	free(long_pattern);
}

struct warnings {
	char *text[32];
	size_t n;
};

static void collect(void *ud, const char *msg)
{
	struct warnings *w = ud;
	if (w->n < 32)
		w->text[w->n++] = xstrdup(msg);
}

static void warnings_free(struct warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->text[i]);
	w->n = 0;
}

static char *write_file(const char *content)
{
	char *path = xstrdup("/tmp/baton-kh-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	size_t n = strlen(content);
	cr_assert_eq(write(fd, content, n), (ssize_t)n);
	close(fd);
	return path;
}

static struct exec_kh *load(const char *path, struct warnings *w)
{
	char *err = NULL;
	struct exec_kh *kh = exec_kh_load(path, collect, w, &err);
	cr_assert_not_null(kh, "exec_kh_load(%s): %s", path, err ? err : "?");
	return kh;
}

/* The blob of "TYPE BASE64" (caller frees). */
static unsigned char *blob(const char *line, size_t *len)
{
	const char *b64 = strchr(line, ' ') + 1;
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *out = xmalloc(strlen(b64));
	size_t o = 0;
	unsigned acc = 0, bits = 0;
	for (const char *p = b64; *p && *p != '='; p++) {
		acc = acc << 6 | (unsigned)(strchr(t, *p) - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*len = o;
	return out;
}

static enum exec_kh_status check(const struct exec_kh *kh, const char *addr, int port, const char *key, long *line)
{
	size_t n;
	unsigned char *k = blob(key, &n);
	struct exec_kh_found f;
	enum exec_kh_status st = exec_kh_check(kh, addr, port, k, n, &f);
	free(k);
	if (line)
		*line = f.line;
	return st;
}

Test(knownhosts, unreadable_lines_are_skipped_and_reported_the_rest_is_read)
{
	char longline[6000];
	memset(longline, 'x', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	struct buf b = {0};
	buf_printf(&b, "justahost\n");                       /* 1 */
	buf_printf(&b, "%s\n", longline);                    /* 2: over 4 KiB, no key */
	buf_printf(&b, "# a comment\n\n   \n");              /* 3-5 */
	buf_printf(&b, "web1 " KEY_B "\n");                  /* 6: beyond the bad lines */
	buf_printf(&b, "@unknown web3 " KEY_A "\n");         /* 7 */
	buf_printf(&b, "web4 ssh-ed25519 not*base64\n");     /* 8 */
	buf_printf(&b, "web5 ssh-rsa %s\n", strchr(KEY_A, ' ') + 1); /* 9: the type lies */
	buf_printf(&b, "@cert-authority *.example.com " KEY_A "\n"); /* 10 */
	buf_printf(&b, "web6 1024 35 12345678901234567890\n"); /* 11: SSH-1 */
	buf_printf(&b, "|1|bad|hash " KEY_A "\n");           /* 12 */
	buf_printf(&b, "web7 " KEY_A " a comment");          /* 13: no newline at the end */
	char *path = write_file(b.data);
	buf_free(&b);
	struct warnings w = {0};
	struct exec_kh *kh = load(path, &w);
	long line;
	cr_assert_eq(check(kh, "web1", 22, KEY_B, &line), EXEC_KH_MATCH, "a line after unreadable ones is read");
	cr_assert_eq(line, 6);
	cr_assert_eq(check(kh, "web1", 22, KEY_A, &line), EXEC_KH_CHANGED);
	cr_assert_eq(check(kh, "web7", 22, KEY_A, NULL), EXEC_KH_MATCH, "the last line without a newline");
	cr_assert_eq(check(kh, "web3", 22, KEY_A, NULL), EXEC_KH_UNKNOWN);
	long first;
	cr_assert_eq(exec_kh_skipped(kh, &first), 8);
	cr_assert_eq(first, 1);
	cr_assert_eq(w.n, 8, "one warning per skipped line");
	const long lines[] = {1, 2, 7, 8, 9, 10, 11, 12};
	for (size_t i = 0; i < w.n; i++) {
		char want[64];
		snprintf(want, sizeof want, "%s:%ld: ", path, lines[i]);
		cr_assert(str_has_prefix(w.text[i], want), "warning %zu: %s (want %s...)", i, w.text[i], want);
		cr_assert_null(strchr(w.text[i], '\n'), "a warning is one line");
	}
	cr_assert(strstr(w.text[5], "@cert-authority"), "%s", w.text[5]);
	warnings_free(&w);
	exec_kh_free(kh);
	unlink(path);
	free(path);
}

Test(knownhosts, hashed_names_from_ssh_keygen_match_and_ports_count)
{
	char *path = write_file(HASHED_WEB1_2222 " " KEY_A "\n" HASHED_WEB2 " " KEY_A "\n");
	struct warnings w = {0};
	struct exec_kh *kh = load(path, &w);
	cr_assert_eq(w.n, 0);
	long line;
	cr_assert_eq(check(kh, "web1.example.com", 2222, KEY_A, &line), EXEC_KH_MATCH);
	cr_assert_eq(line, 1);
	cr_assert_eq(check(kh, "WEB1.Example.COM", 2222, KEY_A, NULL), EXEC_KH_MATCH, "names are compared in lower case");
	cr_assert_eq(check(kh, "web1.example.com", 2222, KEY_B, NULL), EXEC_KH_CHANGED);
	cr_assert_eq(check(kh, "web1.example.com", 22, KEY_A, NULL), EXEC_KH_UNKNOWN, "[host]:2222 is not host:22");
	cr_assert_eq(check(kh, "web2.example.com", 22, KEY_A, NULL), EXEC_KH_MATCH);
	/* the bare name counts for another port, but only with this very key */
	cr_assert_eq(check(kh, "web2.example.com", 2200, KEY_A, NULL), EXEC_KH_MATCH);
	cr_assert_eq(check(kh, "web2.example.com", 2200, KEY_B, NULL), EXEC_KH_UNKNOWN);
	char *types = exec_kh_known_types(kh, "web1.example.com", 2222);
	cr_assert_str_eq(types, "ssh-ed25519");
	free(types);
	types = exec_kh_known_types(kh, "web9", 22);
	cr_assert_str_eq(types, "");
	free(types);
	exec_kh_free(kh);
	unlink(path);
	free(path);
}

Test(knownhosts, revoked_keys_are_refused_first_and_other_keys_mean_changed)
{
	char *path = write_file("@revoked * " KEY_B "\n"
				"web1,web2 " KEY_B "\n"
				"*.example.com,!bad.example.com " KEY_A "\n"
				"web3 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7\n");
	struct warnings w = {0};
	struct exec_kh *kh = load(path, &w);
	long line;
	cr_assert_eq(check(kh, "web1", 22, KEY_B, &line), EXEC_KH_REVOKED, "an @revoked key is refused even if listed");
	cr_assert_eq(line, 1);
	cr_assert_eq(check(kh, "anything", 2222, KEY_B, NULL), EXEC_KH_REVOKED);
	cr_assert_eq(check(kh, "web2", 22, KEY_A, &line), EXEC_KH_CHANGED);
	cr_assert_eq(line, 2);
	cr_assert_eq(check(kh, "a.example.com", 22, KEY_A, NULL), EXEC_KH_MATCH);
	cr_assert_eq(check(kh, "bad.example.com", 22, KEY_A, NULL), EXEC_KH_UNKNOWN, "a negated name");
	/* a key of another type known for the host: OpenSSH calls that changed too */
	struct exec_kh_found f;
	size_t n;
	unsigned char *k = blob(KEY_A, &n);
	cr_assert_eq(exec_kh_check(kh, "web3", 22, k, n, &f), EXEC_KH_CHANGED);
	cr_assert_str_eq(f.type, "ssh-rsa");
	cr_assert_eq(f.line, 4);
	free(k);
	exec_kh_free(kh);
	unlink(path);
	free(path);
}

Test(knownhosts, a_missing_file_is_empty_an_unreadable_one_is_an_error)
{
	char *err = NULL;
	struct exec_kh *kh = exec_kh_load("/nonexistent/baton/known_hosts", NULL, NULL, &err);
	cr_assert_not_null(kh);
	cr_assert_null(err);
	cr_assert_eq(check(kh, "web1", 22, KEY_A, NULL), EXEC_KH_UNKNOWN);
	exec_kh_free(kh);
	kh = exec_kh_load("/tmp", NULL, NULL, &err);
	cr_assert_null(kh, "a directory is not a known hosts file");
	cr_assert(strstr(err, "/tmp") && strstr(err, strerror(EISDIR)), "%s", err);
	free(err);
	err = NULL;
	kh = exec_kh_load("/dev/null", NULL, NULL, &err);
	cr_assert_not_null(kh, "/dev/null reads as empty");
	exec_kh_free(kh);
}

Test(knownhosts, append_writes_openssh_format_0600_and_is_known_at_once)
{
	char dir[] = "/tmp/baton-kh-dir-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char *path = xasprintf("%s/known_hosts", dir);
	struct exec_kh *kh = load(path, NULL);
	size_t n;
	unsigned char *k = blob(KEY_A, &n);
	char *err = exec_kh_append(kh, "10.0.0.1", 2222, k, n);
	cr_assert_null(err, "%s", err);
	struct exec_kh_found f;
	cr_assert_eq(exec_kh_check(kh, "10.0.0.1", 2222, k, n, &f), EXEC_KH_MATCH);
	err = exec_kh_append(kh, "web1", 22, k, n);
	cr_assert_null(err, "%s", err);
	err = exec_kh_append(kh, "bad,name", 22, k, n);
	cr_assert_not_null(err, "a name with a comma would read back as two");
	free(err);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	FILE *fp = fopen(path, "r");
	char got[512] = "";
	size_t r = fread(got, 1, sizeof got - 1, fp);
	got[r] = '\0';
	fclose(fp);
	cr_assert_str_eq(got, "[10.0.0.1]:2222 " KEY_A "\nweb1 " KEY_A "\n");
	free(k);
	exec_kh_free(kh);
	/* a file that does not end with a newline gets one before the new line */
	fp = fopen(path, "w");
	fputs("web1 " KEY_B, fp);
	fclose(fp);
	kh = load(path, NULL);
	k = blob(KEY_A, &n);
	err = exec_kh_append(kh, "web2", 22, k, n);
	cr_assert_null(err, "%s", err);
	fp = fopen(path, "r");
	r = fread(got, 1, sizeof got - 1, fp);
	got[r] = '\0';
	fclose(fp);
	cr_assert_str_eq(got, "web1 " KEY_B "\nweb2 " KEY_A "\n");
	free(k);
	exec_kh_free(kh);
	unlink(path);
	rmdir(dir);
	free(path);
}
