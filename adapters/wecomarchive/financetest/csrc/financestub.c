/*
 * A stand-in for WeCom's conversation-archive library
 * (libWeWorkFinanceSdk_C.so) with the vendor's C interface, for tests: the
 * hub loads it exactly as it loads the real one. GetChatData asks the
 * WeCom stand-in (wecomtest) through the "proxy" argument, as the real
 * library sends its requests through a proxy; DecryptData undoes the
 * stand-in's cipher (hex of the message XOR the random key, behind a
 * "WWFS" mark). It is small on purpose and speaks plain HTTP/1.0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct Slice_t {
	char *buf;
	int len;
} Slice_t;

typedef struct WeWorkFinanceSdk_t {
	char corpid[128];
	char secret[256];
	int ready;
} WeWorkFinanceSdk_t;

WeWorkFinanceSdk_t *NewSdk(void) { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }

void DestroySdk(WeWorkFinanceSdk_t *sdk) { free(sdk); }

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
	if (!sdk || !corpid || !secret || !*corpid || !*secret) return 10000;
	if (strlen(corpid) >= sizeof(sdk->corpid) || strlen(secret) >= sizeof(sdk->secret)) return 10000;
	strcpy(sdk->corpid, corpid);
	strcpy(sdk->secret, secret);
	sdk->ready = 1;
	return 0;
}

Slice_t *NewSlice(void) { return calloc(1, sizeof(Slice_t)); }

void FreeSlice(Slice_t *s) {
	if (!s) return;
	free(s->buf);
	free(s);
}

char *GetContentFromSlice(Slice_t *s) { return s ? s->buf : NULL; }

int GetSliceLen(Slice_t *s) { return s ? s->len : 0; }

static int set_slice(Slice_t *s, const char *data, int n) {
	char *b = malloc((size_t)n + 1);
	if (!b) return 10003;
	memcpy(b, data, (size_t)n);
	b[n] = 0;
	free(s->buf);
	s->buf = b;
	s->len = n;
	return 0;
}

/* proxy is "http://127.0.0.1:PORT" (or without the scheme). */
static int parse_proxy(const char *proxy, struct sockaddr_in *addr) {
	char host[64];
	int port = 0;
	if (!proxy) return -1;
	if (strncmp(proxy, "http://", 7) == 0) proxy += 7;
	const char *colon = strchr(proxy, ':');
	if (!colon || (size_t)(colon - proxy) >= sizeof(host)) return -1;
	memcpy(host, proxy, (size_t)(colon - proxy));
	host[colon - proxy] = 0;
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535) return -1;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit, const char *proxy,
                const char *passwd, int timeout, Slice_t *chatDatas) {
	(void)passwd;
	struct sockaddr_in addr;
	if (!sdk || !sdk->ready || !chatDatas || limit == 0 || limit > 1000) return 10000;
	if (parse_proxy(proxy, &addr) != 0) return 10001;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) return 10001;
	struct timeval tv = {timeout > 0 ? timeout : 5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return 10001;
	}
	char req[1024];
	int n = snprintf(req, sizeof(req),
	                 "GET http://qyapi.weixin.qq.com/cgi-bin/stand_in/finance/chatdata?corpid=%s&secret=%s&seq=%llu&limit=%u HTTP/1.0\r\n"
	                 "Host: qyapi.weixin.qq.com\r\n\r\n",
	                 sdk->corpid, sdk->secret, seq, limit);
	if (n <= 0 || n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n) {
		close(fd);
		return 10001;
	}
	size_t cap = 1 << 16, len = 0;
	char *resp = malloc(cap);
	for (;;) {
		if (len + 4096 > cap) {
			char *bigger = realloc(resp, cap * 2);
			if (!bigger) {
				free(resp);
				close(fd);
				return 10003;
			}
			resp = bigger;
			cap *= 2;
		}
		ssize_t got = read(fd, resp + len, cap - len);
		if (got < 0) {
			free(resp);
			close(fd);
			return 10001;
		}
		if (got == 0) break;
		len += (size_t)got;
	}
	close(fd);
	int rc = 10001;
	char *body = NULL;
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(resp + i, "\r\n\r\n", 4) == 0) {
			body = resp + i + 4;
			break;
		}
	}
	if (body && len > 12 && memcmp(resp + 9, "200", 3) == 0) rc = set_slice(chatDatas, body, (int)(resp + len - body));
	free(resp);
	return rc;
}

static int hexval(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
	if (!encrypt_key || !encrypt_msg || !msg) return 10000;
	size_t kl = strlen(encrypt_key), ml = strlen(encrypt_msg);
	if (kl == 0 || ml % 2 != 0) return 10002;
	size_t n = ml / 2;
	char *out = malloc(n + 1);
	if (!out) return 10003;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(encrypt_msg[2 * i]), lo = hexval(encrypt_msg[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return 10002;
		}
		out[i] = (char)(((hi << 4) | lo) ^ encrypt_key[i % kl]);
	}
	int rc = 10002;
	if (n >= 4 && memcmp(out, "WWFS", 4) == 0) rc = set_slice(msg, out + 4, (int)(n - 4));
	free(out);
	return rc;
}
