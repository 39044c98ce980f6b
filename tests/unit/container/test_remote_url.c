/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of URL handling for remote sources: what may be shown of a
 * URL (no user info, no query), and which strings are URLs.
 */
#include <string.h>

#include "io/remote.h"
#include "nck_test.h"

NCK_TEST(remote_url_redact_strips_userinfo_and_query)
{
	char out[256];

	nck_url_redact(out, sizeof(out), "https://alice:pw@host.example:8443/a/b.nemo?X-Amz-Signature=s#f");
	ASSERT_EQ_STR(out, "https://host.example:8443/a/b.nemo");
	nck_url_redact(out, sizeof(out), "http://host/x.nemo");
	ASSERT_EQ_STR(out, "http://host/x.nemo");
	nck_url_redact(out, sizeof(out), "http://tok@host");
	ASSERT_EQ_STR(out, "http://host");
	/* An '@' in the path is not user info. */
	nck_url_redact(out, sizeof(out), "http://host/a@b.nemo");
	ASSERT_EQ_STR(out, "http://host/a@b.nemo");
	nck_url_redact(out, 8, "http://user:secret@h/p");
	ASSERT_EQ_STR(out, "http://");
}

NCK_TEST(remote_url_is_remote)
{
	ASSERT_TRUE(nck_url_is_remote("http://h/x"));
	ASSERT_TRUE(nck_url_is_remote("HTTPS://h/x"));
	ASSERT_TRUE(!nck_url_is_remote("/tmp/http://x"));
	ASSERT_TRUE(!nck_url_is_remote("ftp://h/x"));
}
