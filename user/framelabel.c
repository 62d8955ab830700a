/* SPDX-License-Identifier: BSD-2-Clause */
/* framelabel.c - split "qualname (path:LINE)" frame labels. */
#include <string.h>

#include "framelabel.h"

bool frame_label_split(const char *s, size_t len, struct frame_parts *p)
{
	size_t i, colon, open;
	long line = 0;

	if (!s || len < 6 || s[len - 1] != ')')
		return false;
	i = len - 1;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	/* 1-9 digits, no leading zero (so the label rebuilds to the same bytes) */
	if (i == len - 1 || len - 1 - i > 9 || (len - 1 - i > 1 && s[i] == '0'))
		return false;
	for (size_t k = i; k < len - 1; k++)
		line = line * 10 + (s[k] - '0');
	if (i > 0 && s[i - 1] == '-') {
		if (!line) /* "-0" */
			return false;
		line = -line;
		i--;
	}
	if (i == 0 || s[i - 1] != ':')
		return false;
	colon = i - 1;
	/* the first " (": qualnames hold no spaces, paths may ("My Project (2)/x.py") */
	for (open = 2; open <= colon; open++)
		if (s[open - 2] == ' ' && s[open - 1] == '(')
			break;
	if (open > colon || open == 2 || open == colon) /* an empty name or file: not a frame */
		return false;
	p->name = s;
	p->name_len = open - 2;
	p->file = s + open;
	p->file_len = colon - open;
	p->line = line;
	return true;
}
