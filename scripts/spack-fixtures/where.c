/* Part of the ocibuild-zpipe fixture package: prints the prefixes compiled into it. */
#include <stdio.h>
#include <zlib.h>

static const char zpipe_prefix[] = ZPIPE_PREFIX;
static const char *zlib_prefix = ZLIB_PREFIX;

int main(void)
{
    printf("zpipe %s\nzlib %s\nzlib version %s\n", zpipe_prefix, zlib_prefix, zlibVersion());
    return 0;
}
