// job_pool — a pool of worker fibers serving jobs from a channel, each job answered through its own
// oneshot; a barrier holds the callers until every worker is up, and a read-write lock guards a table the
// workers read and a caller updates.
// Usage: job_pool [WORKERS] [JOBS]   (defaults 4 and 20; prints the sum of the answers)
#include <fiberio/fiberio.hpp>

#include <iostream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

struct Job {
  int input;
  fiberio::OneshotSender<int> reply;  // where the answer goes
};

// Runs `jobs` jobs on `workers` fibers; returns the sum of the answers.
long run_pool(int workers, int jobs) {
  fiberio::Channel<Job> queue{16};
  fiberio::Barrier ready{static_cast<std::size_t>(workers) + 1};  // the workers and this caller
  fiberio::RwLock table_lock;
  std::map<std::string, int> table{{"factor", 2}};

  std::vector<fiberio::JoinHandle<void>> pool;
  for (int w = 0; w < workers; ++w) {
    pool.push_back(fiberio::spawn([&] {
      ready.wait();
      while (auto job = queue.recv()) {
        int factor;
        {
          std::shared_lock read(table_lock);  // workers read the table together
          factor = table.at("factor");
        }
        (void)job->reply.send(job->input * factor);  // a caller that left gets nothing: fine
      }
    }));
  }
  ready.wait();  // every worker is up

  long sum = 0;
  for (int i = 1; i <= jobs; ++i) {
    if (i == jobs / 2) {
      std::unique_lock write(table_lock);  // alone while it changes
      table["factor"] = 3;
    }
    auto [reply, answer] = fiberio::oneshot<int>();
    queue.send(Job{i, std::move(reply)});
    sum += answer.recv().value_or(0);
  }
  queue.close();
  for (auto& worker : pool)
    worker.join();
  return sum;
}

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::stoi(argv[1]) : 4;
  const int jobs = argc > 2 ? std::stoi(argv[2]) : 20;
  if (workers < 1 || jobs < 1) {
    std::cerr << "job_pool: WORKERS and JOBS must be at least 1\n";
    return 2;
  }
  fiberio::Runtime runtime;
  std::cout << runtime.block_on([&] { return run_pool(workers, jobs); }) << "\n";
  return 0;
}
