/* warrend: the Warren AMQP 0-9-1 broker daemon (placeholder main; see net/). */
#include "config.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("warrend %s\n", PACKAGE_VERSION);
	return 0;
}
