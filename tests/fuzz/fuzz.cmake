# libFuzzer targets, one per parser of outside input (tests/fuzz/README.md): included by CMakeLists.txt
# when PAYREMIND_FUZZ is ON. Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev).
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "PAYREMIND_FUZZ needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang "
                      "(Debian packages clang and libclang-rt-14-dev); scripts/fuzz.sh does it for you")
endif()

# The core library is instrumented for coverage (fuzzer-no-link) and checked by ASan + UBSan; every
# program that links it (daemon, tools, unit tests, fuzz targets) links the sanitizer runtimes too.
# UBSan aborts instead of printing and going on, so that libFuzzer sees undefined behaviour as a crash.
set(PR_FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
target_compile_options(payremind_core PRIVATE -fsanitize=fuzzer-no-link ${PR_FUZZ_SANITIZE})
target_link_options(payremind_core INTERFACE -fsanitize=address,undefined)

# One executable fuzz_<name> per tests/fuzz/fuzz_<name>.c, its seeds in tests/fuzz/corpus/<name>/.
# ctest runs each over its seeds once (a regression check; scripts/fuzz.sh does the fuzzing).
file(GLOB PR_FUZZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
add_custom_target(fuzz)
foreach(src ${PR_FUZZ_SRC})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" corpus ${name})
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${PR_FUZZ_SANITIZE})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE payremind_core)
  add_dependencies(fuzz ${name})
  file(GLOB seeds CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${corpus}/*)
  if(seeds)
    add_test(NAME fuzz.${corpus} COMMAND ${name} ${seeds})
    set_tests_properties(fuzz.${corpus} PROPERTIES LABELS fuzz TIMEOUT 120
      ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/fuzz/lsan.supp")
  endif()
endforeach()
