# Hand-written codec core (owned by the codec module).
src_libwarren_a_SOURCES += \
	src/codec/errors.h src/codec/wire.h src/codec/table.h src/codec/frame.h
