# Network layer: listeners, connections, output queues, SASL.
src_libwarren_a_SOURCES += \
	src/net/listener.c src/net/listener.h \
	src/net/conn.c src/net/conn.h \
	src/net/conn_auth.c src/net/conn_auth.h \
	src/net/conn_handshake.c src/net/conn_int.h \
	src/net/outq.c src/net/outq.h
