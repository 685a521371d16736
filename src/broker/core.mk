# Broker core: the top-level struct, channels, error replies; logging and
# allocation helpers they use.
src_libwarren_a_SOURCES += \
	src/broker/broker.c src/broker/broker.h \
	src/broker/channel.c src/broker/channel.h src/broker/channel_int.h \
	src/broker/channel_basic.c src/broker/channel_publish.c src/broker/channel_reply.c \
	src/broker/channel_confirm.c \
	src/broker/reply.c src/broker/reply.h \
	src/broker/message.h \
	src/util/log.c src/util/log.h src/util/log_syslog.c src/util/log_syslog.h \
	src/util/xalloc.c src/util/xalloc.h
src_libwarren_a_SOURCES += src/broker/broker_store.c
