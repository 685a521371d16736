/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every store record and file header.  Uses the SSE4.2 crc32 instruction
 * when the CPU has it (checked once at run time), a slice-by-8 table
 * otherwise; both give identical results ("123456789" -> 0xE3069283).
 * The tables are computed at compile time, so there is no mutable state.
 */
#ifndef WARREN_STORE_CRC32C_H
#define WARREN_STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0, feed pieces in order. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

static inline uint32_t crc32c(const void *data, size_t len)
{
	return crc32c_update(0, data, len);
}

/* The portable implementation, exposed so tests can compare both paths. */
uint32_t crc32c_update_sw(uint32_t crc, const void *data, size_t len);
/* True when crc32c_update uses the hardware instruction. */
int crc32c_hw_available(void);

#endif
