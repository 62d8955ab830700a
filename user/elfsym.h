/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * elfsym.h - symbols, sections and file-backed bytes of one ELF file (libelf).
 *
 * The file belongs to a target process and is untrusted: lookups bound
 * every size, and a malformed file gives an error, never a crash.
 */
#ifndef PYSAMP_ELFSYM_H
#define PYSAMP_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;

/* Open path read-only. NULL with errno set (ENOEXEC when not a 64-bit ELF). Free with elf_file__free. */
struct elf_file *elf_file__open(const char *path);
/* Close and free; accepts NULL. */
void elf_file__free(struct elf_file *ef);

/*
 * Look up a defined symbol (not SHN_UNDEF), first in .symtab, then in
 * .dynsym. Fills *vaddr (st_value) and *size when non-NULL. Returns 0 or
 * -ENOENT.
 */
int elf_file__symbol(const struct elf_file *ef, const char *name, uint64_t *vaddr, uint64_t *size)
	__attribute__((warn_unused_result));

/* true when name is a defined symbol. */
bool elf_file__has_symbol(const struct elf_file *ef, const char *name);

/* Address and size of the section called name. Returns 0 or -ENOENT. */
int elf_file__section(const struct elf_file *ef, const char *name, uint64_t *addr, uint64_t *size)
	__attribute__((warn_unused_result));

/*
 * Copy len bytes at virtual address vaddr from the file's PT_LOAD segments
 * (bytes beyond p_filesz read as zero). Returns 0, -EFAULT when not covered.
 */
int elf_file__read(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
	__attribute__((warn_unused_result));

/* Page-aligned p_vaddr of the PT_LOAD segment mapped from file offset 0. Returns 0 or -ENOENT. */
int elf_file__base_vaddr(const struct elf_file *ef, uint64_t *vaddr)
	__attribute__((warn_unused_result));

/* ET_EXEC (fixed addresses) rather than ET_DYN. */
bool elf_file__is_exec(const struct elf_file *ef);

#endif /* PYSAMP_ELFSYM_H */
