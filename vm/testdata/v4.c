// Exercises the ISA as clang-19 emits it for -mcpu=v4: signed division
// and modulo, movsx, sign-extending loads, byte swaps, every atomic on
// global data, bpf_loop with a callback, bpf-to-bpf calls, and .data,
// .bss and .rodata. Results go to out[] (in .bss); the test compares them
// and the return value with the kernel's (make to rebuild v4.o).

typedef unsigned long long u64;
typedef long long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned short u16;
typedef signed char s8;
typedef short s16;

static long (*bpf_loop)(u32 nr, void *fn, void *ctx, u64 flags) = (void *)181;

volatile s64 in[8] = {-7, 3, 0x123456789abcdef0LL, -0x8000000000000000LL, -1, 0x80, 0xff80, 250};
const volatile s64 scale = 5;
u64 out[40];
u64 word;
u32 word32;

struct acc {
	u64 sum;
	u64 n;
};

static long step(u32 i, void *ctx)
{
	struct acc *a = ctx;
	a->sum += (u64)i * i;
	a->n++;
	return i == 50;
}

__attribute__((noinline)) static s64 mix(s64 a, s64 b)
{
	return a / b + a % b * 100;
}

__attribute__((noinline)) static u64 deep(u64 x, int d)
{
	if (d == 0)
		return x;
	return deep(x * 3 + 1, d - 1) ^ d;
}

__attribute__((section("socket"), used)) int run(void *skb)
{
	s64 a = in[0], b = in[1], c = in[2], d = in[3], e = in[4];
	int k = 0;

	out[k++] = a / b;                    // sdiv
	out[k++] = a % b;                    // smod
	out[k++] = (s32)a / (s32)b;          // sdiv32
	out[k++] = (s32)a % (s32)b;          // smod32
	out[k++] = d / e;                    // LLONG_MIN / -1
	out[k++] = d % e;
	out[k++] = (u64)c / (u64)b;
	out[k++] = (u64)c % 1000;
	out[k++] = (s64)(s8)c;               // movsx
	out[k++] = (s64)(s16)c;
	out[k++] = (s64)(s32)c;
	out[k++] = (u32)(s8)in[5];
	out[k++] = __builtin_bswap16((u16)c); // bswap
	out[k++] = __builtin_bswap32((u32)c);
	out[k++] = __builtin_bswap64(c);
	out[k++] = *(volatile s8 *)&in[5];   // sign-extending loads
	out[k++] = *(volatile s16 *)&in[6];
	out[k++] = *(volatile s32 *)&in[3];
	out[k++] = c >> (in[1] + 60);        // shifts by a register
	out[k++] = (u64)c >> (in[1] + 60);
	out[k++] = (u32)c << (in[1] + 20);
	out[k++] = mix(c, a);
	out[k++] = deep(in[7], 6);

	word = 10;
	word32 = 10;
	out[k++] = __sync_fetch_and_add(&word, 5);
	out[k++] = __sync_fetch_and_or(&word, 0x100);
	out[k++] = __sync_fetch_and_and(&word, 0x10f);
	out[k++] = __sync_fetch_and_xor(&word, 0xff);
	out[k++] = __sync_lock_test_and_set(&word, 77);
	out[k++] = __sync_val_compare_and_swap(&word, 77, 78);
	out[k++] = __sync_val_compare_and_swap(&word, 77, 79);
	out[k++] = __sync_fetch_and_add(&word32, 3);
	out[k++] = __sync_val_compare_and_swap(&word32, 13, 14);
	__sync_fetch_and_add(&word, 1000);
	out[k++] = word;
	out[k++] = word32;

	struct acc acc = {};
	out[k++] = bpf_loop(100, step, &acc, 0);
	out[k++] = acc.sum;
	out[k++] = acc.n;
	out[k++] = scale * 7;

	return (int)(out[0] + out[21] + out[22] + acc.sum);
}

char _license[] __attribute__((section("license"), used)) = "GPL";
