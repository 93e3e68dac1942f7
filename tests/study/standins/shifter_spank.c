/*
 * TEST DOUBLE, NOT SHIFTER: a stand-in for the Slurm SPANK plugin that NERSC's Shifter installs.
 *
 * Shifter cannot run on the test machines. What its plugin does for a batch script is what the
 * bench depends on: it adds the `--image=TYPE:NAME` option to sbatch/salloc/srun (so that
 * `#SBATCH --image=docker:IMAGE` is accepted) and hands the image to the job, where the `shifter`
 * command finds it in SLURM_SPANK_SHIFTER_IMAGETYPE and SLURM_SPANK_SHIFTER_IMAGE (Shifter's
 * documented image-selection variables). This plugin does only that; the `shifter` stand-in
 * beside it then runs the image with podman.
 *
 * Built by the tests: gcc -shared -fPIC shifter_spank.c -o shifter_spank.so
 * Loaded through plugstack.conf:  optional /path/to/shifter_spank.so
 */
#include <slurm/spank.h>
#include <stdio.h>
#include <string.h>

SPANK_PLUGIN(shifter_standin, 1);

static char image_type[64];
static char image_name[1024];

static int image_option(int val, const char *optarg, int remote) {
    (void)val;
    (void)remote;
    const char *colon = optarg ? strchr(optarg, ':') : NULL;
    if (!colon || colon == optarg || colon[1] == '\0') {
        slurm_error("shifter stand-in: --image must be TYPE:NAME, e.g. docker:user/image:tag");
        return -1;
    }
    snprintf(image_type, sizeof image_type, "%.*s", (int)(colon - optarg), optarg);
    snprintf(image_name, sizeof image_name, "%s", colon + 1);
    return 0;
}

static struct spank_option image = {"image", "TYPE:NAME", "Shifter image for the job (test stand-in)", 1, 0,
                                    image_option};

int slurm_spank_init(spank_t sp, int ac, char **av) {
    (void)ac;
    (void)av;
    return spank_option_register(sp, &image) == ESPANK_SUCCESS ? 0 : -1;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av) {
    (void)ac;
    (void)av;
    if (!image_name[0]) return 0;
    if (spank_setenv(sp, "SLURM_SPANK_SHIFTER_IMAGETYPE", image_type, 1) != ESPANK_SUCCESS ||
        spank_setenv(sp, "SLURM_SPANK_SHIFTER_IMAGE", image_name, 1) != ESPANK_SUCCESS) {
        slurm_error("shifter stand-in: cannot set the image in the job environment");
        return -1;
    }
    return 0;
}
