/* SPDX-License-Identifier: BSD-2-Clause */
/* elfsym.c - ELF symbol and segment lookups through libelf. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsym.h"

struct elf_file {
	int fd;
	Elf *elf;
	GElf_Ehdr ehdr;
};

struct elf_file *elf_file__open(const char *path)
{
	struct elf_file *ef;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return NULL;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef)
		return NULL;
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0) {
		err = errno;
		goto fail;
	}
	ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || gelf_getclass(ef->elf) != ELFCLASS64 ||
	    !gelf_getehdr(ef->elf, &ef->ehdr)) {
		err = ENOEXEC;
		goto fail;
	}
	return ef;
fail:
	elf_file__free(ef);
	errno = err;
	return NULL;
}

void elf_file__free(struct elf_file *ef)
{
	if (!ef)
		return;
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef);
}

static int find_in_table(const struct elf_file *ef, Elf_Scn *scn, const GElf_Shdr *sh,
			 const char *name, uint64_t *vaddr, uint64_t *size)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return -ENOENT;
	n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *sname;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0)
			continue;
		sname = elf_strptr(ef->elf, sh->sh_link, sym.st_name);
		if (!sname || strcmp(sname, name) != 0)
			continue;
		if (vaddr)
			*vaddr = sym.st_value;
		if (size)
			*size = sym.st_size;
		return 0;
	}
	return -ENOENT;
}

int elf_file__symbol(const struct elf_file *ef, const char *name, uint64_t *vaddr, uint64_t *size)
{
	static const Elf64_Word order[] = { SHT_SYMTAB, SHT_DYNSYM };

	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		Elf_Scn *scn = NULL;

		while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != order[k])
				continue;
			if (find_in_table(ef, scn, &sh, name, vaddr, size) == 0)
				return 0;
		}
	}
	return -ENOENT;
}

bool elf_file__has_symbol(const struct elf_file *ef, const char *name)
{
	return elf_file__symbol(ef, name, NULL, NULL) == 0;
}

int elf_file__section(const struct elf_file *ef, const char *name, uint64_t *addr, uint64_t *size)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(ef->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *sname;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sname = elf_strptr(ef->elf, shstrndx, sh.sh_name);
		if (!sname || strcmp(sname, name) != 0)
			continue;
		*addr = sh.sh_addr;
		*size = sh.sh_size;
		return 0;
	}
	return -ENOENT;
}

int elf_file__read(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
	size_t nph;

	if (elf_getphdrnum(ef->elf, &nph))
		return -EFAULT;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		uint64_t rel, in_file;
		ssize_t n;

		if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_memsz ||
		    len > ph.p_memsz - (vaddr - ph.p_vaddr))
			continue;
		rel = vaddr - ph.p_vaddr;
		memset(buf, 0, len);
		if (rel >= ph.p_filesz)
			return 0; /* all in .bss */
		in_file = ph.p_filesz - rel;
		if (in_file > len)
			in_file = len;
		n = pread(ef->fd, buf, in_file, (off_t)(ph.p_offset + rel));
		if (n < 0 || (uint64_t)n != in_file)
			return -EFAULT;
		return 0;
	}
	return -EFAULT;
}

int elf_file__base_vaddr(const struct elf_file *ef, uint64_t *vaddr)
{
	size_t nph;
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		page = 4096;
	if (elf_getphdrnum(ef->elf, &nph))
		return -ENOENT;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset != 0)
			continue;
		*vaddr = ph.p_vaddr & ~((uint64_t)page - 1);
		return 0;
	}
	return -ENOENT;
}

bool elf_file__is_exec(const struct elf_file *ef)
{
	return ef->ehdr.e_type == ET_EXEC;
}
