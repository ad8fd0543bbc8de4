/* embr: the command-line tool. Dispatches to cli/cmd_<command>.c; each command parses its own
 * flags from a table (cli/args.c) so that --help always matches the behaviour. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"w2v", cmd_w2v, "word2vec: train word vectors; similar words, analogies, evaluation"},
    {"tsne", cmd_tsne, "t-SNE maps of vectors (2-D/3-D); transform new points; score a map"},
    {"index", cmd_index, "build, search and describe approximate (HNSW, IVF) and exact indexes"},
    {"collection", cmd_collection, "durable vector store: vectors + ids + JSON metadata, filtered search"},
    {"train", cmd_train, "train an image embedding network (ArcFace, CosFace, SphereFace, softmax)"},
    {"embed", cmd_embed, "images to embedding vectors with a trained model"},
    {"eval", cmd_eval, "verification and identification accuracy of a model"},
    {"search", cmd_search, "exact k-nearest-neighbour search (l2, ip, cosine, l1)"},
    {"convert", cmd_convert, "convert a matrix file between formats"},
    {"recall", cmd_recall, "recall@k of result ids against ground truth"},
    {"info", cmd_info, "describe a matrix file"},
    {"synth", cmd_synth, "generate clustered vectors (seeded Gaussian mixture)"},
    {"plot", cmd_plot, "draw 2-D coordinates: PNG, SVG, PDF or interactive HTML"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f) {
  fprintf(f,
          "usage: embr <command> [options]\n\n"
          "embr: embeddings and retrieval. Commands:\n");
  for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f,
          "\n'embr <command> --help' lists a command's flags and their defaults.\n"
          "options:\n"
          "  -h, --help     show this help and exit\n"
          "  --version      print the version and exit\n"
          "environment:\n"
          "  EMBR_CPU=scalar  use the portable kernels instead of AVX2+FMA\n"
          "  OMP_NUM_THREADS  default thread count when a command's --threads is 0\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: embr <command> [options]\nTry 'embr --help'.\n");
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    if (strcmp(name, "help") == 0 && argc > 2) {
      for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[2], commands[i].name) == 0) {
          char *args[] = {argv[2], "--help", NULL};
          return commands[i].run(2, args);
        }
    }
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(name, "--version") == 0) {
    printf("embr %s (kernels: %s)\n", embr_version(), embr_cpu_name(embr_cpu_active()));
    return EXIT_OK;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "embr: unknown command '%s'\nTry 'embr --help'.\n", name);
  return EXIT_USAGE;
}
