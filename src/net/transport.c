/*
 * The plain TCP transport (see transport.h): the socket calls themselves,
 * no state and no allocation per connection.  sendmsg with MSG_NOSIGNAL so
 * a peer that went away is an EPIPE, not a signal.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "net/transport.h"

static ssize_t tcp_read(struct transport *t, void *buf, size_t n)
{
	return read(t->fd, buf, n);
}

static ssize_t tcp_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	return sendmsg(t->fd, &mh, MSG_NOSIGNAL);
}

static void tcp_close(struct transport *t)
{
	(void)t; /* the caller closes the descriptor */
}

static const struct transport_ops tcp_ops = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.close = tcp_close,
};

void transport_tcp_init(struct transport *t, int fd)
{
	t->ops = &tcp_ops;
	t->fd = fd;
	t->ctx = NULL;
}
