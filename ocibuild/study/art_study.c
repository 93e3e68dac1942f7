/*
 * art-study: the "art study" test of the paper "Docker use case for HEP" as one static program.
 *
 * Like the paper's art job, it makes EVENTS events, each holding a vector of INTS integers, runs
 * MODULES worker modules over every event (the first makes the vector, the others work on it) and
 * an output module that writes every event, zlib-compressed at level 1 (RootOutput's
 * compressionLevel: 1), to a file in the output directory.  Timings go to an SQLite database in
 * the schema of art 1.x's TimeTracker service:
 *
 *   TimeEvent  (Run, Subrun, Event, Time)                 one row per event
 *   TimeModule (Run, Subrun, Event, PathModuleId, Time)   one row per module and event,
 *                                                         PathModuleId = "path:label:type"
 *   TimeReport (ReportType, Min, Mean, Max, Median, RMS, nEvts)   "Full event" and one per module
 *
 * Times are seconds of CLOCK_MONOTONIC.  Progress lines follow art's "Begin processing the Nth
 * record" form; one line gives the wall-clock time the first event began (for the bench's
 * submission-to-first-event overhead).
 *
 * Build (the bench does this: `ocibuild bench build-workload`):
 *   gcc -O2 -static art_study.c -o art-study -lsqlite3 -lz -lm -lpthread
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define WORKER_PATH "study"
#define OUTPUT_PATH "stream1"
#define MAX_PRODUCT_INTS 4096

typedef struct {
    const char *type;
    /* Fills `out` (at most MAX_PRODUCT_INTS values) from the event's vector; returns the count. */
    size_t (*work)(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch);
} kernel;

typedef struct {
    char label[32];
    const kernel *kernel;
    int32_t *product;
    size_t product_len;
} module;

typedef struct {
    long events;
    long ints;
    long modules;
    const char *output_dir;
    const char *db_name;
    const char *data_name;
    long run;
} options;

static void die(const char *fmt, const char *detail) {
    fprintf(stderr, "art-study: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the event's vector: ADC-like counts, a pedestal with noise and a few pulses ---- */

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void make_event(int32_t *ints, size_t n, long run, long event) {
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)run << 32) ^ (uint64_t)event;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = xorshift(&s);
        int32_t v = 400 + (int32_t)(r & 15) - 8;
        if ((r >> 20) % 997 == 0) v += (int32_t)((r >> 40) & 1023);
        ints[i] = v;
    }
}

/* ---- worker kernels: each reads the vector and puts a small product into the event ---- */

static int cmp_int(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static size_t k_quantiles(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    memcpy(scratch, ints, n * sizeof *ints);
    qsort(scratch, n, sizeof *scratch, cmp_int);
    for (size_t q = 0; q < 11; q++) out[q] = n ? scratch[(n - 1) * q / 10] : 0;
    return 11;
}

static size_t k_histogram(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    (void)scratch;
    memset(out, 0, MAX_PRODUCT_INTS * sizeof *out);
    for (size_t i = 0; i < n; i++) out[(uint32_t)ints[i] % MAX_PRODUCT_INTS]++;
    return MAX_PRODUCT_INTS;
}

static size_t k_smooth(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    int64_t sum = 0, window = 0;
    for (size_t i = 0; i < n; i++) {
        window += ints[i];
        if (i >= 8) window -= ints[i - 8];
        scratch[i] = (int32_t)(window / 8);
        sum += scratch[i];
    }
    out[0] = (int32_t)(sum / (int64_t)(n ? n : 1));
    return 1;
}

static size_t k_hits(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    (void)scratch;
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (ints[i] > 450 && found < MAX_PRODUCT_INTS) out[found++] = (int32_t)i;
    }
    return found;
}

static size_t k_checksum(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    (void)scratch;
    out[0] = (int32_t)crc32(0L, (const Bytef *)ints, (uInt)(n * sizeof *ints));
    return 1;
}

static size_t k_moments(const int32_t *ints, size_t n, int32_t *out, int32_t *scratch) {
    (void)scratch;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = ints[i];
        s1 += v;
        s2 += v * v;
    }
    double mean = n ? s1 / (double)n : 0;
    out[0] = (int32_t)(mean * 1000);
    out[1] = (int32_t)((n ? s2 / (double)n - mean * mean : 0) * 1000);
    return 2;
}

static const kernel producer = {"IntVectorProducer", NULL};
static const kernel kernels[] = {
    {"IntVectorQuantiles", k_quantiles}, {"IntVectorHistogrammer", k_histogram},
    {"IntVectorSmoother", k_smooth},     {"IntVectorHitFinder", k_hits},
    {"IntVectorChecksum", k_checksum},   {"IntVectorMoments", k_moments},
};
#define N_KERNELS (sizeof kernels / sizeof kernels[0])

/* ---- the output module: one zlib (level 1) stream over every event ---- */

typedef struct {
    FILE *file;
    z_stream z;
    unsigned char buffer[1 << 16];
} output;

static void output_bytes(output *o, const void *data, size_t len, int flush) {
    o->z.next_in = (Bytef *)data;
    o->z.avail_in = (uInt)len;
    do {
        o->z.next_out = o->buffer;
        o->z.avail_out = sizeof o->buffer;
        if (deflate(&o->z, flush) == Z_STREAM_ERROR) die("%s", "zlib deflate failed");
        size_t have = sizeof o->buffer - o->z.avail_out;
        if (have && fwrite(o->buffer, 1, have, o->file) != have) die("cannot write events: %s", strerror(errno));
    } while (o->z.avail_out == 0);
}

static void output_u32(output *o, uint32_t v) {
    unsigned char b[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};
    output_bytes(o, b, 4, Z_NO_FLUSH);
}

static void output_ints(output *o, const int32_t *ints, size_t n) {
    /* The file is little-endian; so is every machine this runs on (x86_64, aarch64). */
    output_bytes(o, ints, n * sizeof *ints, Z_NO_FLUSH);
}

/* Event record: "EVT1", run, subrun, event, product count, then per product: label length,
 * label, int count, ints (all u32/i32 little-endian). */
static void output_event(output *o, long run, long event, const int32_t *ints, size_t n, const module *mods,
                         size_t nmods) {
    output_bytes(o, "EVT1", 4, Z_NO_FLUSH);
    output_u32(o, (uint32_t)run);
    output_u32(o, 0);
    output_u32(o, (uint32_t)event);
    output_u32(o, (uint32_t)nmods);
    for (size_t m = 0; m < nmods; m++) {
        const int32_t *data = m == 0 ? ints : mods[m].product;
        size_t len = m == 0 ? n : mods[m].product_len;
        output_u32(o, (uint32_t)strlen(mods[m].label));
        output_bytes(o, mods[m].label, strlen(mods[m].label), Z_NO_FLUSH);
        output_u32(o, (uint32_t)len);
        output_ints(o, data, len);
    }
    output_bytes(o, NULL, 0, Z_SYNC_FLUSH);
    if (fflush(o->file) != 0) die("cannot write events: %s", strerror(errno));
}

/* ---- TimeTracker database (art 1.x schema) ---- */

static void db_exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) die("sqlite: %s", err ? err : "error");
}

static void db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) die("sqlite: %s", sqlite3_errmsg(db));
}

/* TimeReport rows computed in SQL, with art's definitions: median = mean of the middle row(s),
 * RMS = population standard deviation. */
static void db_report(sqlite3 *db, const char *label, const char *table) {
    char sql[2048];
    snprintf(sql, sizeof sql,
             "INSERT INTO TimeReport SELECT '%s', min(Time), avg(Time), max(Time),"
             " (SELECT avg(Time) FROM (SELECT Time FROM %s ORDER BY Time"
             "   LIMIT 2 - (SELECT count(*) FROM %s) %% 2 OFFSET (SELECT (count(*) - 1) / 2 FROM %s))),"
             " sqrt(sum((Time - (SELECT avg(Time) FROM %s)) * (Time - (SELECT avg(Time) FROM %s))) / count(Time)),"
             " count(*) FROM %s",
             label, table, table, table, table, table, table);
    db_exec(db, sql);
}

/* art 1.x's PathModuleId: "path:label:type"; index nmods is the output module. */
static void module_id(char *out, size_t size, const module *mods, size_t nmods, size_t m) {
    if (m < nmods) snprintf(out, size, "%s:%s:%s", WORKER_PATH, mods[m].label, mods[m].kernel->type);
    else snprintf(out, size, "%s:out1:ZlibOutput", OUTPUT_PATH);
}

static void write_database(const char *path, const options *opt, const module *mods, size_t nmods,
                           const double *event_times, const double *module_times) {
    sqlite3 *db;
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK) die("cannot create the timing database %s", path);
    db_exec(db, "BEGIN");
    db_exec(db,
            "CREATE TABLE TimeEvent (Run integer, Subrun integer, Event integer, Time numeric);"
            "CREATE TABLE TimeModule (Run integer, Subrun integer, Event integer, PathModuleId text,"
            " Time numeric);"
            "CREATE TABLE TimeReport (ReportType text, Min numeric, Mean numeric, Max numeric,"
            " Median numeric, RMS numeric, nEvts integer);");
    sqlite3_stmt *ev, *mod;
    db_prepare(db, "INSERT INTO TimeEvent VALUES (?, 0, ?, ?)", &ev);
    db_prepare(db, "INSERT INTO TimeModule VALUES (?, 0, ?, ?, ?)", &mod);
    char id[128];
    for (long e = 0; e < opt->events; e++) {
        sqlite3_bind_int64(ev, 1, opt->run);
        sqlite3_bind_int64(ev, 2, e + 1);
        sqlite3_bind_double(ev, 3, event_times[e]);
        if (sqlite3_step(ev) != SQLITE_DONE) die("sqlite: %s", sqlite3_errmsg(db));
        sqlite3_reset(ev);
        for (size_t m = 0; m <= nmods; m++) {
            module_id(id, sizeof id, mods, nmods, m);
            sqlite3_bind_int64(mod, 1, opt->run);
            sqlite3_bind_int64(mod, 2, e + 1);
            sqlite3_bind_text(mod, 3, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(mod, 4, module_times[e * (long)(nmods + 1) + (long)m]);
            if (sqlite3_step(mod) != SQLITE_DONE) die("sqlite: %s", sqlite3_errmsg(db));
            sqlite3_reset(mod);
        }
    }
    sqlite3_finalize(ev);
    sqlite3_finalize(mod);
    if (opt->events > 0) {
        db_report(db, "Full event", "TimeEvent");
        for (size_t m = 0; m <= nmods; m++) {
            char label[128], ddl[512];
            module_id(label, sizeof label, mods, nmods, m);
            snprintf(ddl, sizeof ddl,
                     "CREATE TEMP TABLE tmpModTable AS SELECT * FROM TimeModule WHERE PathModuleId='%s'", label);
            db_exec(db, ddl);
            db_report(db, label, "temp.tmpModTable");
            db_exec(db, "DROP TABLE temp.tmpModTable");
        }
    }
    db_exec(db, "COMMIT");
    if (sqlite3_close(db) != SQLITE_OK) die("cannot close the timing database %s", path);
}

/* ---- command line ---- */

static long parse_count(const char *name, const char *text, long min) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > INT_MAX) die("bad value for %s", name);
    return v;
}

static const char usage[] =
    "usage: art-study [--events N] [--ints N] [--modules N] [--output-dir DIR]\n"
    "                 [--db FILE] [--data FILE] [--run N]\n"
    "  --events N       events to process (500)\n"
    "  --ints N         integers in each event's vector (250000)\n"
    "  --modules N      worker modules, the first makes the vector (10)\n"
    "  --output-dir DIR where the event file and the database go (.)\n"
    "  --db FILE        TimeTracker database, relative to DIR (timing.db)\n"
    "  --data FILE      compressed event file, relative to DIR (events.dat)\n"
    "  --run N          run number (1)\n";

static options parse_options(int argc, char **argv) {
    options opt = {500, 250000, 10, ".", "timing.db", "events.dat", 1};
    static const struct option longopts[] = {
        {"events", required_argument, NULL, 'e'}, {"ints", required_argument, NULL, 'n'},
        {"modules", required_argument, NULL, 'm'}, {"output-dir", required_argument, NULL, 'o'},
        {"db", required_argument, NULL, 'd'},      {"data", required_argument, NULL, 'f'},
        {"run", required_argument, NULL, 'r'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:n:m:o:d:f:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': opt.events = parse_count("--events", optarg, 0); break;
        case 'n': opt.ints = parse_count("--ints", optarg, 1); break;
        case 'm': opt.modules = parse_count("--modules", optarg, 1); break;
        case 'o': opt.output_dir = optarg; break;
        case 'd': opt.db_name = optarg; break;
        case 'f': opt.data_name = optarg; break;
        case 'r': opt.run = parse_count("--run", optarg, 1); break;
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); exit(2);
        }
    }
    if (optind < argc) die("unexpected argument %s", argv[optind]);
    return opt;
}

static void join(char *out, size_t size, const char *dir, const char *name) {
    if (name[0] == '/') snprintf(out, size, "%s", name);
    else snprintf(out, size, "%s/%s", dir, name);
}

/* Where the events ran: the bench records it per task (batch jobs run away from the submit host). */
static void print_host(void) {
    struct utsname u;
    char line[512], model[256] = "unknown";
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    while (cpuinfo && fgets(line, sizeof line, cpuinfo)) {
        char *colon = strchr(line, ':');
        if (colon && strncmp(line, "model name", 10) == 0) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (cpuinfo) fclose(cpuinfo);
    printf("art-study: host %s, cpu %s\n", uname(&u) == 0 ? u.nodename : "unknown", model);
}

static const char *ordinal(long n) {
    if (n % 100 >= 11 && n % 100 <= 13) return "th";
    switch (n % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
    }
}

int main(int argc, char **argv) {
    options opt = parse_options(argc, argv);
    struct stat st;
    if (stat(opt.output_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        die("output directory %s does not exist", opt.output_dir);
    char data_path[PATH_MAX], db_path[PATH_MAX];
    join(data_path, sizeof data_path, opt.output_dir, opt.data_name);
    join(db_path, sizeof db_path, opt.output_dir, opt.db_name);

    size_t n = (size_t)opt.ints, nmods = (size_t)opt.modules;
    int32_t *ints = malloc(n * sizeof *ints), *scratch = malloc(n * sizeof *scratch);
    module *mods = calloc(nmods, sizeof *mods);
    double *event_times = malloc(((size_t)opt.events + 1) * sizeof(double));
    double *module_times = malloc(((size_t)opt.events * (nmods + 1) + 1) * sizeof(double));
    if (!ints || !scratch || !mods || !event_times || !module_times) die("%s", "out of memory");
    for (size_t m = 0; m < nmods; m++) {
        snprintf(mods[m].label, sizeof mods[m].label, m == 0 ? "makeInts" : "work%02zu", m);
        mods[m].kernel = m == 0 ? &producer : &kernels[(m - 1) % N_KERNELS];
        mods[m].product = malloc(MAX_PRODUCT_INTS * sizeof(int32_t));
        if (!mods[m].product) die("%s", "out of memory");
    }

    output out = {0};
    out.file = fopen(data_path, "wb");
    if (!out.file) die("cannot create the event file %s", data_path);
    if (deflateInit(&out.z, 1) != Z_OK) die("%s", "zlib init failed");

    printf("art-study: %ld events x %zu ints, %zu worker modules + 1 output module\n", opt.events, n, nmods);
    printf("art-study: events -> %s (zlib level 1), timing -> %s\n", data_path, db_path);
    print_host();
    fflush(stdout);
    for (long e = 0; e < opt.events; e++) {
        if (e == 0) printf("art-study: first event begins at %.6f (unix time)\n", wall_clock());
        printf("Begin processing the %ld%s record. run: %ld subRun: 0 event: %ld\n", e + 1, ordinal(e + 1),
               opt.run, e + 1);
        fflush(stdout);
        double *times = &module_times[e * (long)(nmods + 1)];
        double event_start = now();
        for (size_t m = 0; m < nmods; m++) {
            double t0 = now();
            if (m == 0) {
                make_event(ints, n, opt.run, e + 1);
                mods[m].product_len = 0;
            } else {
                mods[m].product_len = mods[m].kernel->work(ints, n, mods[m].product, scratch);
            }
            times[m] = now() - t0;
        }
        double t0 = now();
        output_event(&out, opt.run, e + 1, ints, n, mods, nmods);
        times[nmods] = now() - t0;
        event_times[e] = now() - event_start;
    }
    output_bytes(&out, NULL, 0, Z_FINISH);
    deflateEnd(&out.z);
    if (fclose(out.file) != 0) die("cannot write events: %s", strerror(errno));

    write_database(db_path, &opt, mods, nmods, event_times, module_times);
    printf("art-study: done, %ld events\n", opt.events);
    return 0;
}
