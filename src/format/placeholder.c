/* SPDX-License-Identifier: MIT */
/* Keeps nck_format non-empty until its first parser lands. */
void nck_format_placeholder(void);

void nck_format_placeholder(void)
{
}
