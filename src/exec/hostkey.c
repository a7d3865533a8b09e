/*
 * hostkey.c — the SSH server's host key against the known hosts file
 * (knownhosts.c), as ssh(1) checks it, with the reason for a refusal in
 * words; and the host key algorithms offered to a server, those of the
 * keys on file first.
 */
#include <stdlib.h>
#include <string.h>

#include "exec/hostkey.h"
#include "exec/ssh2.h"
#include "util/util.h"

static const char *key_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "RSA";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "DSA";
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ECDSA";
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ED25519";
#endif
	default:
		return "unknown";
	}
}

/* "SHA256:..." as ssh-keygen -l prints it: unpadded base64. */
static void fingerprint(LIBSSH2_SESSION *s, struct buf *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!h) {
		buf_adds(out, "(no fingerprint)");
		return;
	}
	buf_adds(out, "SHA256:");
	for (size_t i = 0; i < 32; i += 3) {
		unsigned v = (unsigned)h[i] << 16;
		size_t n = 32 - i < 3 ? 32 - i : 3;
		if (n > 1)
			v |= (unsigned)h[i + 1] << 8;
		if (n > 2)
			v |= h[i + 2];
		buf_addc(out, b64[(v >> 18) & 63]);
		buf_addc(out, b64[(v >> 12) & 63]);
		if (n > 1)
			buf_addc(out, b64[(v >> 6) & 63]);
		if (n > 2)
			buf_addc(out, b64[v & 63]);
	}
}

/* The host as known_hosts names it: the address, in brackets with a port other than 22. */
static char *kh_name(const struct exec_host *h)
{
	return h->port == 22 ? xstrdup(h->address) : xasprintf("[%s]:%d", h->address, h->port);
}

/* " (note: FILE:LINE and N other lines could not be read ...)": a refusal may be due to a skipped line. */
static void skipped_note(const struct exec_kh *kh, const char *file, struct buf *b)
{
	long first;
	size_t n = exec_kh_skipped(kh, &first);
	if (!n)
		return;
	buf_printf(b, " (note: %s:%ld", file, first);
	if (n > 1)
		buf_printf(b, " and %zu other line%s", n - 1, n > 2 ? "s" : "");
	buf_adds(b, " could not be read and were skipped)");
}

/* The reason a host whose key was not accepted is refused (caller frees). */
static char *refusal(LIBSSH2_SESSION *s, const struct exec_host *h, const struct exec_kh *kh, const char *file,
		     enum exec_kh_status st, const struct exec_kh_found *f, int type)
{
	struct buf fp = {0}, r = {0};
	fingerprint(s, &fp);
	char *name = kh_name(h);
	if (st == EXEC_KH_REVOKED)
		buf_printf(&r, "host key revoked: the server's %s key %s for %s is marked @revoked in %s:%ld; refusing the "
			       "host",
			   key_name(type), fp.data, name, file, f->line);
	else if (st == EXEC_KH_CHANGED)
		buf_printf(&r, "host key changed: the server offers %s key %s, but %s:%ld has another key for %s (%s); "
			       "refusing the host (if the change is expected, remove that line: ssh-keygen -R '%s' -f %s)",
			   key_name(type), fp.data, file, f->line, name, f->type, name,
			   file);
	else
		buf_printf(&r, "host key unknown: the server's %s key %s for %s is not in %s; refusing the host (check it "
			       "and add it, e.g. ssh-keyscan -p %d %s >> %s, or set ssh: {known_hosts: accept-new})",
			   key_name(type), fp.data, name, file, h->port, h->address,
			   file);
	if (st != EXEC_KH_REVOKED)
		skipped_note(kh, file, &r);
	free(name);
	buf_free(&fp);
	return buf_detach(&r);
}

char *exec_hostkey_check(LIBSSH2_SESSION *s, const struct exec_host *h, struct exec_kh *kh, const char *file,
			 bool accept_new)
{
	size_t klen = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(s, &klen, &type);
	if (!key)
		return xstrdup("the server sent no host key");
	struct exec_kh_found f;
	enum exec_kh_status st = exec_kh_check(kh, h->address, h->port, (const unsigned char *)key, klen, &f);
	if (st == EXEC_KH_MATCH)
		return NULL;
	if (st == EXEC_KH_UNKNOWN && accept_new)
		return exec_kh_append(kh, h->address, h->port, (const unsigned char *)key, klen);
	return refusal(s, h, kh, file, st, &f, type);
}

/* Appends the n-byte name to a comma-separated list unless it is there already, or not one of the n_ok names. */
static void list_add_unique(struct buf *list, const char *name, size_t n, const char **ok, int n_ok)
{
	bool supported = false;
	for (int i = 0; i < n_ok && !supported; i++)
		supported = ok[i] && strlen(ok[i]) == n && !memcmp(ok[i], name, n);
	if (!supported)
		return;
	for (const char *o = list->data; o && *o;) {
		size_t l = strcspn(o, ",");
		if (l == n && !memcmp(o, name, n))
			return;
		o += l + (o[l] == ',');
	}
	if (list->len)
		buf_addc(list, ',');
	buf_add(list, name, n);
}

void exec_hostkey_prefer(LIBSSH2_SESSION *s, const struct exec_kh *kh, const struct exec_host *h)
{
	static const char defaults[] = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
				       "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-dss";
	/* only names this libssh2 knows: it would strip the others itself, with overlapping
	 * memcpy (libssh2 1.10), and some, such as rsa-sha2-512, it lacks before 1.11 */
	const char **ok = NULL;
	int n_ok = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &ok);
	if (n_ok <= 0)
		return;
	char *known = exec_kh_known_types(kh, h->address, h->port);
	struct buf want = {0}, out = {0};
	buf_printf(&want, "%s,%s", known, defaults);
	for (const char *t = want.data; *t;) {
		size_t l = strcspn(t, ",");
		if (l == 7 && !memcmp(t, "ssh-rsa", 7)) {
			/* an RSA key is offered under its SHA-2 signature names too */
			list_add_unique(&out, "rsa-sha2-512", 12, ok, n_ok);
			list_add_unique(&out, "rsa-sha2-256", 12, ok, n_ok);
		}
		list_add_unique(&out, t, l, ok, n_ok);
		t += l + (t[l] == ',');
	}
	if (out.len)
		libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, out.data);
	libssh2_free(s, (void *)ok);
	buf_free(&want);
	buf_free(&out);
	free(known);
}
